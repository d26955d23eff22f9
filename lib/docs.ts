// The interactive API docs, served by the users service and reached through the gateway at /docs:
// Swagger UI from the npm package swagger-ui-dist (nothing from a CDN), showing both services'
// OpenAPI documents as the gateway serves them, so that "Try it out" goes through the gateway.
import { createReadStream } from 'node:fs';
import path from 'node:path';
import type Router from '@koa/router';
import { ROOT } from './config.ts';
import type { LogState } from './http.ts';
import { notFound } from './problem.ts';

const DIST = path.join(ROOT, 'node_modules/swagger-ui-dist');
const FILES: Record<string, string> = {
  'swagger-ui.css': 'text/css',
  'swagger-ui-bundle.js': 'application/javascript',
  'swagger-ui-standalone-preset.js': 'application/javascript',
  'favicon-32x32.png': 'image/png',
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Enrollment gateway: API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="docs"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    // Log in with POST /login (Users service), then "Authorize" with the access_token.
    window.ui = SwaggerUIBundle({
      urls: [
        { url: '/openapi/enrollment.json', name: 'Enrollment service' },
        { url: '/openapi/users.json', name: 'Users service' },
      ],
      dom_id: '#docs',
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: 'StandaloneLayout',
      persistAuthorization: true,
    });
  </script>
</body>
</html>
`;

export function addDocsRoutes(router: Router<LogState>): void {
  router.get('/docs', (ctx) => {
    ctx.type = 'text/html';
    ctx.body = PAGE;
  });
  router.get('/docs/:file', (ctx) => {
    const type = FILES[ctx.params.file];
    if (!type) throw notFound(`no file "${ctx.params.file}" in the docs`);
    ctx.type = type;
    ctx.set('Cache-Control', 'max-age=3600');
    ctx.body = createReadStream(path.join(DIST, ctx.params.file));
  });
}

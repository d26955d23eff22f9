// What both Koa services share: the one error boundary that turns every failure into an
// RFC 9457 problem document, the one-line-per-request log, and a strict JSON body parser.
import process from 'node:process';
import type { Duplex } from 'node:stream';
import type Router from '@koa/router';
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';
import { config } from './config.ts';
import { routeDifferences } from './openapi.ts';
import { badRequest, notFound, Problem } from './problem.ts';

// What the request log may say about a request beyond method, path, status and time.
export interface LogState {
  user?: string;
  log?: Record<string, string>;
}

function createApp(): Koa<LogState> {
  const app = new Koa<LogState>();
  app.use(requestLog);
  app.use(errorBoundary);
  app.use(requireJsonBody);
  app.use(
    bodyParser({
      enableTypes: ['json'],
      jsonLimit: config.http.bodyLimit,
      strict: true,
      onerror: (error) => {
        const status = (error as { status?: number }).status;
        if (status === 413) throw new Problem(413, 'Payload Too Large', `the body is larger than ${config.http.bodyLimit}`);
        throw badRequest('the body is not valid JSON');
      },
    }),
  );
  return app;
}

async function requestLog(ctx: Koa.ParameterizedContext<LogState>, next: Koa.Next): Promise<void> {
  const started = performance.now();
  await next(); // errorBoundary, inside, turns every failure into a response
  // The gateway's health checks (one a second per instance) would drown the log: only a failed
  // one is worth a line.
  if (ctx.path === '/health' && ctx.status === 200) return;
  const ms = Math.round(performance.now() - started);
  const extra = Object.entries({ user: ctx.state.user, ...ctx.state.log })
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => ` ${key}=${value}`)
    .join('');
  process.stdout.write(`${ctx.method} ${ctx.path} ${ctx.status} ${ms}ms${extra}\n`);
}

async function errorBoundary(ctx: Koa.Context, next: Koa.Next): Promise<void> {
  try {
    await next();
    if (ctx.body === undefined) {
      // What the router answers with a bare status: no route, or a method it has no use for.
      // The router says 501 for a method no route has (PROPFIND, TRACE, ...): to the client that is
      // a method this path does not allow, or no route at all; not a failure of the server.
      const allowed = ctx.response.get('Allow');
      if ((ctx.status === 405 || ctx.status === 501) && allowed) {
        throw new Problem(405, 'Method Not Allowed', `${ctx.method} is not allowed on ${ctx.path}; allowed: ${allowed}`);
      }
      if (ctx.status === 404 || ctx.status === 501) throw notFound(`no route for ${ctx.method} ${ctx.path}`);
    }
  } catch (error) {
    const problem = toProblem(error);
    if (problem.status >= 500 && !(error instanceof Problem)) console.error(error);
    ctx.status = problem.status;
    ctx.set(problem.headers);
    ctx.type = 'application/problem+json';
    ctx.body = { type: 'about:blank', title: problem.title, status: problem.status, detail: problem.message };
  }
}

function toProblem(error: unknown): Problem {
  if (error instanceof Problem) return error;
  // Koa's own ctx.throw() errors and koa-bodyparser's carry a status that is safe to show.
  const { status, expose, message } = error as { status?: number; expose?: boolean; message?: string };
  if (typeof status === 'number' && status >= 400 && status < 500 && expose) {
    return new Problem(status, message ?? 'Bad Request', message ?? '');
  }
  return new Problem(500, 'Internal Server Error', 'the server failed to handle this request');
}

async function requireJsonBody(ctx: Koa.Context, next: Koa.Next): Promise<void> {
  if (ctx.request.length && !ctx.is('application/json')) {
    throw new Problem(415, 'Unsupported Media Type', 'send the body as application/json');
  }
  await next();
}

// Node's HTTP parser refuses some requests before Koa sees them (headers too large, malformed
// syntax) and would answer with an empty body: answer with problem JSON, as every other error.
function answerUnparsable(error: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable || error.code === 'ECONNRESET') return void socket.destroy();
  const [status, title, detail] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'the request headers are too large']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'the request did not arrive in time']
        : [400, 'Bad Request', 'the request is not valid HTTP'];
  const body = JSON.stringify({ type: 'about:blank', title, status, detail });
  socket.end(
    `HTTP/1.1 ${status} ${title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

// Builds the app around the service's routes and listens on loopback. The service's OpenAPI
// document is served at /openapi.json, and must list exactly the routes the router has: a service
// whose description has drifted from its code does not start.
// `middleware` runs after the body is parsed, before the routes.
export function serve(router: Router<LogState>, port: number, name: string, description: { paths: Record<string, object> }, middleware: Koa.Middleware[] = []): void {
  router.get('/openapi.json', (ctx) => {
    ctx.body = description;
  });
  const drift = routeDifferences(router, description);
  if (drift.length) throw new Error(`${name}: the routes and the OpenAPI document disagree:\n  ${drift.join('\n  ')}`);
  const app = createApp();
  for (const layer of middleware) app.use(layer);
  app.use(router.routes()).use(router.allowedMethods());
  const server = app.listen(port, '127.0.0.1', () => process.stdout.write(`${name} listening on http://127.0.0.1:${port}\n`));
  server.on('clientError', answerUnparsable);
  // Finish the requests under way, but never wait on a stuck one for more than three seconds.
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

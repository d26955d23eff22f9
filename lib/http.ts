// What both Koa services share: the app built around a service's router (the one error boundary
// that turns every failure into an RFC 9457 problem document, the one-line-per-request log, a
// strict JSON body parser, the route check against its OpenAPI document), and serve(), which runs
// it as a process.
import process from 'node:process';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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

// Where a service writes its lines (one per request, and what it says about its databases).
export type LogWriter = (line: string) => void;
export const toStdout: LogWriter = (line) => void process.stdout.write(`${line}\n`);

// A service's Koa app. close() stops the work it does between requests (hourly clean-ups) and
// closes the databases it was built on.
export type ServiceApp = Koa<LogState> & { close(): Promise<void> };

export interface ServiceParts {
  router: Router<LogState>;
  // The service's OpenAPI document, served at /openapi.json. It must list exactly the routes the
  // router has: a service whose description has drifted from its code is not built.
  description: { paths: Record<string, object> };
  name: string;
  // Run after the body is parsed, before the routes.
  middleware?: Koa.Middleware[];
  log?: LogWriter;
  close(): Promise<void>;
}

export function serviceApp({ router, description, name, middleware = [], log = toStdout, close }: ServiceParts): ServiceApp {
  router.get('/openapi.json', (ctx) => {
    ctx.body = description;
  });
  const drift = routeDifferences(router, description);
  if (drift.length) throw new Error(`${name}: the routes and the OpenAPI document disagree:\n  ${drift.join('\n  ')}`);
  const app = new Koa<LogState>();
  app.use(requestLog(log));
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
  for (const layer of middleware) app.use(layer);
  app.use(router.routes()).use(router.allowedMethods());
  return Object.assign(app, { close });
}

function requestLog(log: LogWriter): Koa.Middleware<LogState> {
  return async (ctx, next) => {
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
    log(`${ctx.method} ${ctx.path} ${ctx.status} ${ms}ms${extra}`);
  };
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

// Listens on loopback (port 0: any free port), answering what Node's parser refuses as problem JSON.
export function listen(app: Koa<LogState>, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, config.http.address, () => resolve(server));
    server.once('error', reject);
    server.on('clientError', answerUnparsable);
  });
}

// Runs a service until SIGTERM or SIGINT: then it finishes the requests under way (a stuck one is cut
// off after three seconds), closes the service's databases, and exits.
export async function serve(app: ServiceApp, port: number, name: string): Promise<void> {
  const server = await listen(app, port);
  process.stdout.write(`${name} listening on http://${config.http.address}:${(server.address() as AddressInfo).port}\n`);
  const stop = () => {
    server.close(() => app.close().finally(() => process.exit(0)));
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 3000).unref();
    // A database call stuck on a dead mount may never let its connection close.
    setTimeout(() => {
      process.stderr.write(`${name}: the databases did not close within 5 s; exiting anyway\n`);
      process.exit(1);
    }, 5000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

// What both OpenAPI 3.1 documents share (users.openapi.ts, enrollment.openapi.ts): problem JSON for
// every error, bearer security, and the check that a document and its router list the same routes.
import type Router from '@koa/router';
import { USERNAME } from './limits.ts';

type Schema = Record<string, unknown>;

const ERRORS: Record<number, string> = {
  400: 'The body is not valid JSON.',
  401: 'No bearer token, or one that does not verify (RS256 signature, issuer, audience, expiry, nbf/iat, sub).',
  403: "The token's roles (or the caller) may not do this.",
  404: 'No such resource.',
  409: 'A conflict with the current state; `detail` says which rule.',
  413: 'The body is larger than 16 KiB.',
  415: 'The body is not application/json.',
  422: 'Well-formed JSON that breaks a rule: a missing or unknown field, a wrong type or a bad value, named in `detail`.',
  429: 'Too many failed logins for the account or from the address; `Retry-After` says how long to wait.',
  503: "The service cannot do this now (a write: the users database's primary is restarting); nothing was changed. `Retry-After` says when to try again.",
};

export const problemSchema: Schema = {
  type: 'object',
  description: 'An RFC 9457 problem document. Every 4xx and 5xx has one, and changed nothing.',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string', const: 'about:blank' },
    title: { type: 'string' },
    status: { type: 'integer', minimum: 400, maximum: 599 },
    detail: { type: 'string' },
  },
};

export function json(schema: Schema, description = 'OK', headers?: Schema) {
  return { description, ...(headers && { headers }), content: { 'application/json': { schema } } };
}

export const noContent = { description: 'Done; no body.' };

// A username, as both services take it (lib/limits.ts).
export const usernameSchema = {
  type: 'string',
  minLength: USERNAME.minLength,
  maxLength: USERNAME.maxLength,
  pattern: USERNAME.pattern,
  description: 'Stored lower-case: "Ada" and "ada" are one account.',
};

// The error responses an operation may give, each a problem document.
export function errors(...statuses: number[]) {
  const problem = (status: number) => ({
    description: ERRORS[status],
    ...((status === 429 || status === 503) && { headers: { 'Retry-After': { description: 'seconds to wait', schema: { type: 'integer', minimum: 1 } } } }),
    content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
  });
  return Object.fromEntries(statuses.map((status) => [String(status), problem(status)]));
}

// A JSON request body that is required, with no fields beyond those listed (the validators refuse
// unknown fields with 422).
export function body(properties: Record<string, Schema>, required: string[] = Object.keys(properties)) {
  return {
    required: true,
    content: { 'application/json': { schema: { type: 'object', additionalProperties: false, required, properties } } },
  };
}

// An operation that needs an access token with one of these roles.
export function withRoles(roles: string[], operation: Schema): Schema {
  return {
    ...operation,
    description: `${operation.description ?? ''}\n\nNeeds an access token with the role ${roles.join(' or ')}.`.trim(),
    security: [{ bearer: [] }],
    'x-roles': roles,
  };
}

export function document(title: string, description: string, paths: Record<string, Schema>, schemas: Record<string, Schema>) {
  return {
    openapi: '3.1.0',
    info: { title, version: '1.0.0', description },
    // Relative: the gateway serves each document, and "try it" calls go through the gateway.
    servers: [{ url: '/' }],
    paths,
    components: {
      schemas: { Problem: problemSchema, ...schemas },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'The access_token from POST /login (RS256).' },
      },
    },
  };
}

// The routes a router has and a document does not, and the other way round, as "GET /classes/{id}".
// GET /openapi.json, which serves the document, is not in it: through the gateway the documents
// are at /openapi/users.json and /openapi/enrollment.json.
export function routeDifferences(router: Router<any>, doc: { paths: Record<string, object> }): string[] {
  const fromRouter = new Set<string>();
  for (const layer of router.stack) {
    const path = String(layer.path).replace(/:(\w+)/g, '{$1}');
    if (path === '/openapi.json') continue;
    for (const method of layer.methods) if (method !== 'HEAD') fromRouter.add(`${method} ${path}`);
  }
  const fromDocument = new Set(Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`)));
  return [
    ...[...fromRouter].filter((route) => !fromDocument.has(route)).map((route) => `${route}: in the router, not in the document`),
    ...[...fromDocument].filter((route) => !fromRouter.has(route)).map((route) => `${route}: in the document, not in the router`),
  ];
}

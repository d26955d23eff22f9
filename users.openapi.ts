// The OpenAPI 3.1 description of users.ts, served at GET /openapi.json (and by the gateway at
// /openapi/users.json). The validators in users.ts stay the rules; this says the same, and the
// tests hold the two together (the routes at start-up, the rest with Schemathesis).
import { PASSWORD } from './lib/limits.ts';
import { body, document, errors, json, noContent, usernameSchema, withRoles } from './lib/openapi.ts';

const username = usernameSchema;
const password = { type: 'string', minLength: PASSWORD.minCharacters, maxLength: PASSWORD.maxBytes, description: `At least ${PASSWORD.minCharacters} characters, at most ${PASSWORD.maxBytes} bytes in UTF-8.` };
const roles = { type: 'array', minItems: 1, items: { type: 'string', enum: ['Student', 'Instructor', 'Registrar'] } };
const usernameParam = { name: 'username', in: 'path', required: true, schema: username };
const refreshBearer = 'Send the refresh token as the bearer: `Authorization: Bearer <refresh_token>`.';

export const usersDocument = document(
  'Users service',
  'Registers users and checks passwords (PBKDF2-SHA256, Django format); a login answers RS256 JWTs it signs itself. Every error is problem JSON. A registration or password change sent with an `Idempotency-Key` header is carried out once: sent again with the same key, it gets the first answer (`Idempotent-Replayed: true`); never a refresh.',
  {
    '/users': {
      post: {
        summary: 'Register an account',
        description: 'Anyone may register as a Student; Instructor or Registrar needs the bearer token of a Registrar.',
        security: [{}, { bearer: [] }],
        requestBody: body({ username, password, roles }),
        responses: {
          201: json({ $ref: '#/components/schemas/Account' }, 'Registered', { Location: { schema: { type: 'string' } } }),
          ...errors(400, 401, 403, 409, 413, 415, 422, 503),
        },
      },
    },
    '/login': {
      post: {
        summary: 'Log in: signed access and refresh tokens',
        requestBody: body({ username: { type: 'string', minLength: 1, maxLength: 64 }, password }),
        responses: { 200: json({ $ref: '#/components/schemas/Tokens' }), ...errors(400, 401, 413, 415, 422, 429, 503) },
      },
    },
    '/refresh': {
      post: {
        summary: 'New tokens for a refresh token, which is used up',
        description: `${refreshBearer} A refresh token works once; one presented again revokes every token of its login.`,
        security: [{ bearer: [] }],
        responses: { 200: json({ $ref: '#/components/schemas/Tokens' }), ...errors(400, 401, 413, 415, 422, 503) },
      },
    },
    '/logout': {
      post: {
        summary: 'End the login a refresh token belongs to',
        description: `${refreshBearer} No refresh token of that login works afterwards; access tokens live out their short lifetime.`,
        security: [{ bearer: [] }],
        responses: { 204: noContent, ...errors(400, 401, 413, 415, 422, 503) },
      },
    },
    '/users/{username}': {
      get: withRoles(['Student', 'Instructor', 'Registrar'], {
        summary: 'An account',
        description: 'The user themselves, or a Registrar.',
        parameters: [usernameParam],
        responses: { 200: json({ $ref: '#/components/schemas/Account' }), ...errors(401, 403, 404) },
      }),
    },
    '/users/{username}/password': {
      put: withRoles(['Student', 'Instructor', 'Registrar'], {
        summary: "Change a password; revokes the user's refresh tokens",
        description: 'The user themselves, who must also give `current_password`, or a Registrar (for another user, `new_password` only).',
        parameters: [usernameParam],
        requestBody: body({ current_password: password, new_password: password }, ['new_password']),
        responses: { 204: noContent, ...errors(400, 401, 403, 404, 413, 415, 422, 429, 503) },
      }),
    },
    '/.well-known/jwks.json': {
      get: {
        summary: 'The public key set that verifies the tokens',
        responses: { 200: json({ $ref: '#/components/schemas/KeySet' }) },
      },
    },
    '/health': {
      get: {
        summary: 'What this instance can do: log people in (a replica answers), write (the primary answers)',
        responses: { 200: json({ $ref: '#/components/schemas/Health' }), ...errors(503) },
      },
    },
    '/replica': {
      get: {
        summary: "With bin/hosts.sh: whether this host's replica is connected to the primary (asked by the other hosts' instances; not routed by the gateway)",
        responses: { 200: json({ type: 'object', required: ['connected'], properties: { connected: { type: 'boolean' } } }), ...errors(404) },
      },
    },
    '/docs': {
      get: { summary: 'The interactive docs of both services (Swagger UI), through the gateway', responses: { 200: { description: 'An HTML page', content: { 'text/html': { schema: { type: 'string' } } } } } },
    },
    '/docs/{file}': {
      get: {
        summary: "A file of the docs page (Swagger UI's script, style sheet, icon)",
        parameters: [{ name: 'file', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { 200: { description: 'The file', content: { '*/*': { schema: { type: 'string' } } } }, ...errors(404) },
      },
    },
  },
  {
    Account: {
      type: 'object',
      required: ['username', 'roles'],
      properties: { username: { type: 'string' }, roles },
    },
    Tokens: {
      type: 'object',
      required: ['access_token', 'refresh_token', 'exp'],
      properties: {
        access_token: { type: 'string', description: 'JWT (RS256, kid): aud, iss, sub, jti, roles, iat, exp' },
        refresh_token: { type: 'string', description: 'JWT with its own audience and no roles; works once' },
        exp: { type: 'integer', description: 'when the access token expires (Unix seconds)' },
      },
    },
    KeySet: {
      type: 'object',
      required: ['keys'],
      properties: {
        keys: {
          type: 'array',
          items: { type: 'object', required: ['kty', 'kid', 'alg', 'n', 'e'], properties: { kty: { const: 'RSA' }, kid: { type: 'string' }, alg: { const: 'RS256' }, use: { const: 'sig' }, n: { type: 'string' }, e: { type: 'string' } } },
        },
      },
    },
    Health: {
      type: 'object',
      required: ['status'],
      description: "An instance's own answer says what it can do; the gateway's /health (the same path) answers only for itself.",
      properties: { status: { const: 'ok' }, logins: { const: true }, writes: { type: 'boolean', description: 'false while the primary is away' } },
    },
  },
);

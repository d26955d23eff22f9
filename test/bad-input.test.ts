// Input that once got a 500: unknown methods on every route of both services, text the schema's
// CHECKs see differently from the validators, and requests Node's HTTP parser refuses. Each gets a
// 4xx problem document, and changes nothing.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import { Database } from '../lib/db.ts';
import { enrollmentInProcess, usersInProcess, type LocalService } from './in-process.ts';
import { call, makeTestKeys, tempDir } from '../harness/support.ts';

const METHODS = ['PROPFIND', 'PROPPATCH', 'TRACE', 'PURGE', 'LOCK', 'UNLOCK', 'COPY', 'MOVE', 'MKCOL', 'SEARCH', 'REPORT', 'LINK', 'UNLINK', 'PATCH', 'OPTIONS', 'PUT', 'DELETE', 'POST', 'GET', 'HEAD'];
const USERS_ROUTES = ['/users', '/users/alice', '/users/alice/password', '/login', '/refresh', '/logout', '/health', '/.well-known/jwks.json', '/no-such-route'];
const ENROLLMENT_ROUTES = [
  '/classes', '/classes/1', '/sections', '/sections/1', '/sections/1/students', '/sections/1/students/student001',
  '/sections/1/dropped', '/sections/1/waitlist', '/sections/1/instructor', '/auto-enrollment', '/me/enrollments',
  '/me/enrollments/1', '/me/waitlist', '/me/waitlist/1', '/me/sections', '/health', '/no-such-route',
];

// node:http, not fetch: fetch refuses TRACE and a few other methods outright.
function send(url: string, method: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(text));
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

describe('bad input never gets a 5xx (both services)', function () {
  this.timeout(60_000);
  let users: LocalService;
  let enrollment: LocalService;
  let token: string;
  let enrollmentDb: string;

  // One key pair for both services, so that the token reaches every handler's own checks.
  before(async () => {
    const dir = await tempDir('bad-input');
    const keys = await makeTestKeys(dir);
    token = await keys.accessToken('registrar', ['Registrar']);
    users = (await usersInProcess({ keys })).service;
    enrollmentDb = path.join(dir, 'enrollment.db');
    enrollment = await enrollmentInProcess(enrollmentDb, keys);
  });
  after(async () => {
    await users?.stop();
    await enrollment?.stop();
  });

  it('gets the token past authentication on the users routes that need one, to their own checks', async () => {
    const authorization = { authorization: `Bearer ${token}` };
    assert.equal(JSON.parse((await send(`${users.url}/users/alice`, 'GET', authorization)).body).detail, 'no user "alice"');
    const noBody = await send(`${users.url}/users/alice/password`, 'PUT', authorization);
    assert.equal(noBody.status, 422, noBody.body);
  });

  for (const [service, routes] of [['users', USERS_ROUTES], ['enrollment', ENROLLMENT_ROUTES]] as const) {
    it(`answers every method on every ${service} route below 500, as problem JSON`, async () => {
      const url = service === 'users' ? users.url : enrollment.url;
      const wrong: string[] = [];
      for (const route of routes) {
        for (const method of METHODS) {
          const reply = await send(`${url}${route}`, method, { authorization: `Bearer ${token}` });
          const isError = reply.status >= 400;
          const problem = method === 'HEAD' || !isError || /^application\/problem\+json/.test(reply.type);
          if (reply.status >= 500 || !problem) wrong.push(`${method} ${route}: ${reply.status} ${reply.type} ${reply.body}`);
        }
      }
      assert.deepEqual(wrong, []);
      const unknown = await send(`${url}${routes[0]}`, 'PROPFIND');
      assert.equal(unknown.status, 405);
      assert.match(JSON.parse(unknown.body).detail, /PROPFIND is not allowed/);
      assert.equal((await send(`${url}/no-such-route`, 'PROPFIND')).status, 404);
    });
  }

  it('says which methods a route allows (405 with Allow)', async () => {
    const reply = await send(`${enrollment.url}/classes`, 'PATCH', { authorization: `Bearer ${token}` });
    assert.equal(reply.status, 405);
    assert.match(JSON.parse(reply.body).detail, /allowed: .*GET.*POST|allowed: .*POST.*GET/);
  });

  it('refuses a class title that is only white space, or holds a control character, with 422 naming it', async () => {
    const before = await countClasses(enrollmentDb);
    for (const title of [' ', '\t\n', 'Intro\u0000', '\u0000abc']) {
      const reply = await call(`${enrollment.url}/classes`, { token, body: { department: 'CPSC', course_code: '120', title } });
      assert.equal(reply.status, 422, `${JSON.stringify(title)}: ${JSON.stringify(reply.body)}`);
      assert.match(reply.body.detail, /^title/);
    }
    assert.equal(await countClasses(enrollmentDb), before);
    const trimmed = await call(`${enrollment.url}/classes`, { token, body: { department: 'CPSC', course_code: '120', title: '  Intro  ' } });
    assert.equal(trimmed.status, 201);
    assert.equal(trimmed.body.title, 'Intro');
  });

  for (const service of ['users', 'enrollment'] as const) {
    it(`answers what Node's HTTP parser refuses (${service}) with problem JSON: 431 for huge headers, 400 for malformed`, async () => {
      const { port } = service === 'users' ? users : enrollment;
      const huge = await raw(port, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      assert.match(huge, /^HTTP\/1\.1 431 /);
      assert.match(huge, /application\/problem\+json/);
      assert.equal(JSON.parse(huge.split('\r\n\r\n')[1]).status, 431);
      const malformed = await raw(port, 'GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
      assert.match(malformed, /^HTTP\/1\.1 400 /);
      assert.equal(JSON.parse(malformed.split('\r\n\r\n')[1]).status, 400);
    });
  }
});

async function countClasses(file: string): Promise<number> {
  const db = await Database.open(file, { readonly: true });
  try {
    return (await db.get<{ count: number }>('SELECT count(*) AS count FROM classes'))!.count;
  } finally {
    await db.close();
  }
}

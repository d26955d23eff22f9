import assert from 'node:assert/strict';
import { Database } from '../lib/db.ts';
import { usersInProcess, type LocalService } from './in-process.ts';
import { AUDIENCE, call, ISSUER, makeTestKeys, quantile, REFRESH_AUDIENCE, startService, startUsers, tempDir, type TestKeys } from '../harness/support.ts';

const PASSWORD = 'correct horse battery';

async function countRows(file: string): Promise<string> {
  const db = await Database.open(file, { readonly: true });
  const row = await db.get<{ users: number; roles: number }>('SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM user_roles) AS roles');
  await db.close();
  return JSON.stringify(row);
}

function assertProblem(reply: { status: number; headers: Headers; body: any }, status: number, detail?: RegExp) {
  assert.equal(reply.status, status, JSON.stringify(reply.body));
  assert.match(reply.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(reply.body.status, status);
  assert.equal(typeof reply.body.title, 'string');
  if (detail) assert.match(reply.body.detail, detail);
}

describe('users service (users.ts)', () => {
  let service: LocalService;
  let keys: TestKeys;
  let db: string;
  let registrarToken: string;

  before(async () => {
    ({ service, keys, db } = await usersInProcess());
    registrarToken = await keys.accessToken('registrar', ['Registrar']);
  });
  after(() => service.stop());

  const register = (body: unknown, token?: string) => call(`${service.url}/users`, { body, token });
  const login = (username: string, password: string) => call(`${service.url}/login`, { body: { username, password } });

  describe('POST /users', () => {
    it('registers a student: 201, Location, and never the hash', async () => {
      const reply = await register({ username: 'Alice', password: PASSWORD, roles: ['Student'] });
      assert.equal(reply.status, 201);
      assert.equal(reply.headers.get('location'), '/users/alice');
      assert.deepEqual(reply.body, { username: 'alice', roles: ['Student'] });
    });

    it('refuses a username that is taken, whatever its case: 409', async () => {
      assertProblem(await register({ username: 'ALICE', password: PASSWORD, roles: ['Student'] }), 409, /taken/);
    });

    it('grants Instructor or Registrar only to a caller whose token carries Registrar', async () => {
      const instructor = { username: 'prof.new', password: PASSWORD, roles: ['Instructor'] };
      assertProblem(await register(instructor), 401);
      assertProblem(await register(instructor, await keys.accessToken('alice', ['Student'])), 403, /Registrar/);
      assertProblem(await register(instructor, await keys.sign({ sub: 'mallory', roles: ['Registrar'], aud: 'elsewhere' })), 401);
      const reply = await register({ ...instructor, roles: ['Instructor', 'Registrar', 'Instructor'] }, registrarToken);
      assert.equal(reply.status, 201);
      assert.deepEqual(reply.body.roles, ['Instructor', 'Registrar']);
    });
  });

  describe('POST /login', () => {
    it('returns JWTs signed with the private key (RS256, kid, typ), claims shaped like mkclaims.py', async () => {
      const before = Math.floor(Date.now() / 1000);
      const reply = await login('alice', PASSWORD);
      assert.equal(reply.status, 200);
      assert.deepEqual(Object.keys(reply.body).sort(), ['access_token', 'exp', 'refresh_token']);
      const { header, claims: access } = await keys.decode(reply.body.access_token);
      assert.deepEqual(header, { alg: 'RS256', kid: keys.kid, typ: 'JWT' });
      const { claims: refresh } = await keys.decode(reply.body.refresh_token);
      const { exp } = reply.body;
      assert.equal(access.aud, AUDIENCE);
      assert.equal(access.iss, ISSUER);
      assert.equal(access.sub, 'alice');
      assert.deepEqual(access.roles, ['Student']);
      assert.equal(typeof access.jti, 'string');
      assert.ok(access.iat! >= before && access.exp! > access.iat!);
      assert.equal(exp, access.exp);
      assert.equal(refresh.aud, REFRESH_AUDIENCE, 'a refresh token must never pass as an access token');
      assert.equal(refresh.roles, undefined);
      assert.notEqual(refresh.jti, access.jti);
      assert.ok(refresh.exp! > access.exp!);
    });

    it('publishes the public key set at /.well-known/jwks.json, with no private part', async () => {
      const reply = await call(`${service.url}/.well-known/jwks.json`);
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.body.keys.map((key: { kid: string; alg: string }) => [key.kid, key.alg]), [[keys.kid, 'RS256']]);
      assert.ok(reply.body.keys.every((key: object) => !('d' in key)));
    });

    it('logs in case-insensitively', async () => {
      assert.equal((await login('ALICE', PASSWORD)).status, 200);
    });

    it('gives a wrong password and an unknown user the same 401', async () => {
      const wrong = await login('alice', 'not the password');
      const unknown = await login('nobody', 'not the password');
      assertProblem(wrong, 401);
      assert.deepEqual(unknown.body, wrong.body);
      assert.equal(unknown.status, wrong.status);
    });
  });

  describe('POST /refresh', () => {
    const refresh = (token?: string) => call(`${service.url}/refresh`, { method: 'POST', token });

    it('turns the refresh token of a login into new tokens, once; a token without its login\'s family is refused', async () => {
      const { refresh_token } = (await login('alice', PASSWORD)).body;
      const reply = await refresh(refresh_token);
      assert.equal(reply.status, 200);
      const { claims } = await keys.decode(reply.body.access_token);
      assert.equal(claims.sub, 'alice');
      assert.deepEqual(claims.roles, ['Student']);
      assertProblem(await refresh(refresh_token), 401, /used before/);
      assertProblem(await refresh(reply.body.refresh_token), 401, /revoked/);
      assertProblem(await refresh(await keys.sign({ sub: 'alice', jti: 'r1', aud: REFRESH_AUDIENCE })), 401, /log in again/);
    });

    it('holds an account back after repeated failed logins: 429 with Retry-After, without checking the password', async () => {
      const { service: limited } = await usersInProcess({ lockout: { freeFailures: 2, firstWaitSeconds: 60 } });
      try {
        const attempt = (password: string) => call(`${limited.url}/login`, { body: { username: 'nobody', password } });
        assert.equal((await attempt('wrong password 1')).status, 401);
        assert.equal((await attempt('wrong password 2')).status, 401);
        assert.equal((await attempt('wrong password 3')).status, 401); // past the free ones: now it waits
        const held = await attempt('wrong password 4');
        assertProblem(held, 429, /try again in 60 s/);
        assert.equal(held.headers.get('retry-after'), '60');
      } finally {
        await limited.stop();
      }
    });

    it('refuses an access token, an expired, a tampered or a foreign-key token, and none: 401', async () => {
      const now = Math.floor(Date.now() / 1000);
      const valid = await keys.sign({ sub: 'alice', jti: 'r2', aud: REFRESH_AUDIENCE });
      const [header, payload, signature] = valid.split('.');
      const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: 'registrar' })).toString('base64url');
      const stranger = await makeTestKeys(await tempDir('stranger'));
      const tokens = {
        access: await keys.accessToken('alice', ['Student']),
        expired: await keys.sign({ sub: 'alice', jti: 'r3', aud: REFRESH_AUDIENCE, iat: now - 100, exp: now - 60 }),
        tampered: `${header}.${forged}.${signature}`,
        foreign: await stranger.sign({ sub: 'alice', jti: 'r4', aud: REFRESH_AUDIENCE }, { kid: keys.kid }),
        unsigned: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`,
        'numeric sub': await keys.sign({ sub: 42 as unknown as string, jti: 'r6', aud: REFRESH_AUDIENCE }),
        'iat in the future': await keys.sign({ sub: 'alice', jti: 'r7', aud: REFRESH_AUDIENCE, iat: now + 3600 }),
        'nbf in the future': await keys.sign({ sub: 'alice', jti: 'r8', aud: REFRESH_AUDIENCE, nbf: now + 3600 }),
      };
      for (const [name, token] of Object.entries(tokens)) {
        const reply = await refresh(token);
        assert.equal(reply.status, 401, `${name}: ${JSON.stringify(reply.body)}`);
      }
      assertProblem(await refresh(), 401);
    });

    it('refuses a refresh token for an account that does not exist: 401', async () => {
      assertProblem(await refresh(await keys.sign({ sub: 'ghost', jti: 'r5', aud: REFRESH_AUDIENCE })), 401);
    });
  });

  describe('GET /users/:username', () => {
    it('shows an account to its owner and to a Registrar only', async () => {
      const own = await call(`${service.url}/users/alice`, { token: await keys.accessToken('alice', ['Student']) });
      assert.deepEqual(own.body, { username: 'alice', roles: ['Student'] });
      assert.equal((await call(`${service.url}/users/alice`, { token: registrarToken })).status, 200);
      assertProblem(await call(`${service.url}/users/alice`, { token: await keys.accessToken('bob', ['Student']) }), 403);
      assertProblem(await call(`${service.url}/users/nobody`, { token: registrarToken }), 404);
      assertProblem(await call(`${service.url}/users/alice`), 401);
    });
  });

  describe('bad input: a 4xx problem and the database unchanged', () => {
    const cases: [string, { body?: unknown; raw?: string; headers?: Record<string, string> }, number][] = [
      ['malformed JSON', { raw: '{"username": "x",' }, 400],
      ['a JSON array', { body: [] }, 422],
      ['a missing field', { body: { username: 'newbie', password: PASSWORD } }, 422],
      ['an unknown field', { body: { username: 'newbie', password: PASSWORD, roles: ['Student'], admin: true } }, 422],
      ['a number for a username', { body: { username: 42, password: PASSWORD, roles: ['Student'] } }, 422],
      ['roles as a string', { body: { username: 'newbie', password: PASSWORD, roles: 'Student' } }, 422],
      ['no roles', { body: { username: 'newbie', password: PASSWORD, roles: [] } }, 422],
      ['an unknown role', { body: { username: 'newbie', password: PASSWORD, roles: ['Student', 'Dean'] } }, 422],
      ['a username with a space', { body: { username: 'new bie', password: PASSWORD, roles: ['Student'] } }, 422],
      ['a too short password', { body: { username: 'newbie', password: 'short', roles: ['Student'] } }, 422],
      ['a password over 1 KiB', { body: { username: 'newbie', password: 'p'.repeat(1025), roles: ['Student'] } }, 422],
      ['a password of 1 KiB in multi-byte characters', { body: { username: 'newbie', password: 'ü'.repeat(600), roles: ['Student'] } }, 422],
      ['a 1 MiB password', { body: { username: 'newbie', password: 'p'.repeat(1 << 20), roles: ['Student'] } }, 413],
      ['a body over 16 KiB', { body: { username: 'newbie', password: PASSWORD, roles: ['Student'], pad: 'x'.repeat(17_000) } }, 413],
      ['a form instead of JSON', { raw: 'username=newbie', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415],
    ];
    for (const [name, request, status] of cases) {
      it(`${name} -> ${status}`, async () => {
        const before = await countRows(db);
        assertProblem(await call(`${service.url}/users`, { method: 'POST', ...request }), status);
        assert.equal(await countRows(db), before);
      });
    }

    it('login with a 1 MiB password -> 413, with wrong types -> 422', async () => {
      assertProblem(await call(`${service.url}/login`, { body: { username: 'alice', password: 'p'.repeat(1 << 20) } }), 413);
      assertProblem(await call(`${service.url}/login`, { body: { username: 'alice', password: 12345678 } }), 422);
      assertProblem(await call(`${service.url}/login`, { body: { username: 'alice' } }), 422);
    });

    it('an unknown path -> 404, a wrong method -> 405, both as problem JSON', async () => {
      assertProblem(await call(`${service.url}/nowhere`), 404);
      assertProblem(await call(`${service.url}/login`, { method: 'DELETE' }), 405);
    });
  });

  describe('health and logs', () => {
    it('GET /health answers 200', async () => {
      assert.deepEqual((await call(`${service.url}/health`)).body, { status: 'ok', logins: true, writes: true });
    });

    it('logs one line per request with the user, and never a password or a token', async () => {
      const { refresh_token } = (await login('alice', PASSWORD)).body;
      await call(`${service.url}/refresh`, { method: 'POST', token: refresh_token });
      const lines = service.logs.filter((line) => /^(GET|POST|PUT|DELETE) /.test(line));
      assert.ok(lines.some((line) => /^POST \/login 200 \d+ms user=alice replica=\S+$/.test(line)), lines.join('\n'));
      assert.ok(lines.some((line) => /^POST \/refresh 200 \d+ms user=alice/.test(line)));
      for (const line of service.logs) {
        assert.ok(!line.includes(PASSWORD) && !line.includes('eyJ'), `leaks a secret: ${line}`);
      }
    });
  });
});

describe('users service timing and concurrency', () => {
  it('an unknown user costs a full hash, like a wrong password', async () => {
    // At 200,000 iterations a hash takes tens of milliseconds; a lookup that skipped it takes ~1.
    // Ten failed logins must not hold an account back.
    const { service } = await usersInProcess({ iterations: 200_000, lockout: { freeFailures: 100 } });
    try {
      const registered = await call(`${service.url}/users`, { body: { username: 'known', password: PASSWORD, roles: ['Student'] } });
      assert.equal(registered.status, 201);
      const refusedIn = async (username: string) => {
        const started = performance.now();
        const reply = await call(`${service.url}/login`, { body: { username, password: 'not the password' } });
        assert.equal(reply.status, 401);
        return performance.now() - started;
      };
      const wrongPassword: number[] = [];
      const unknownUser: number[] = [];
      for (let round = 0; round < 5; round++) {
        wrongPassword.push(await refusedIn('known'));
        unknownUser.push(await refusedIn('nobody'));
      }
      const [wrong, unknown] = [quantile(wrongPassword, 0.5), quantile(unknownUser, 0.5)];
      assert.ok(unknown > wrong / 2, `the unknown user was answered without hashing: ${unknown.toFixed(1)} ms against ${wrong.toFixed(1)} ms for a wrong password (medians of 5)`);
    } finally {
      await service.stop();
    }
  });

  it('keeps answering /health while ten logins hash (no blocking the event loop)', async () => {
    const { service } = await usersInProcess({ iterations: 600_000 });
    try {
      await call(`${service.url}/users`, { body: { username: 'busy', password: PASSWORD, roles: ['Student'] } });
      const order: string[] = [];
      const logins = Array.from({ length: 10 }, () =>
        call(`${service.url}/login`, { body: { username: 'busy', password: PASSWORD } }).then((reply) => order.push(`login ${reply.status}`)),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      const health = await call(`${service.url}/health`);
      order.push(`health ${health.status}`);
      await Promise.all(logins);
      assert.equal(order[0], 'health 200', order.join(', '));
      assert.deepEqual(order.slice(1), Array(10).fill('login 200'));
    } finally {
      await service.stop();
    }
  });
});

describe('users service on a database made in WAL mode', () => {
  it('refuses to start, naming the migration, and leaves the journal mode alone', async () => {
    const dir = await tempDir('users-wal');
    const file = `${dir}/users.db`;
    const db = await Database.open(file);
    await db.exec("PRAGMA journal_mode = WAL; CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT)");
    await db.close();
    const keys = await makeTestKeys(dir);
    await assert.rejects(
      startService('users.ts', { USERS_LITEFS: 'off', USERS_DB: file, USERS_REPLICA_DBS: file, JWKS_PUBLIC: keys.publicFile, JWKS_PRIVATE: keys.privateFile }),
      /WAL mode .*bin\/migrate-users-journal\.sh/,
    );
    const after = await Database.open(file, { readonly: true });
    assert.deepEqual(await after.get('PRAGMA journal_mode'), { journal_mode: 'wal' });
    await after.close();
  });
});

describe('users service under Deno', () => {
  it('runs users.ts unchanged: register, then log in', async () => {
    const { service, keys } = await startUsers({ runtime: 'deno' });
    try {
      const registered = await call(`${service.url}/users`, { body: { username: 'dino', password: PASSWORD, roles: ['Student'] } });
      assert.equal(registered.status, 201);
      const login = await call(`${service.url}/login`, { body: { username: 'dino', password: PASSWORD } });
      assert.equal(login.status, 200);
      assert.equal((await keys.decode(login.body.access_token)).claims.sub, 'dino');
      assert.equal((await call(`${service.url}/login`, { body: { username: 'dino', password: 'wrong password' } })).status, 401);
    } finally {
      await service.stop();
    }
  });
});

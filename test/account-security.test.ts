// Account security past the assignment, through the gateway of a real formation: refresh tokens
// that work once (a replay revokes the login's whole family), logout, password change, rehashing of
// old hashes on login, and brute-force limits per client address (gateway) and per account
// (users service), with Retry-After and a bounded wait.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Database } from '../lib/db.ts';
import { startFormation, type Formation } from './formation.ts';
import { call } from '../harness/support.ts';
import { linesMatching, waitFor } from '../harness/wait.ts';

const ITERATIONS = 300_000; // above the 260,000 of the Python-made hash, so it is rehashed
const LIMITS = { LOGIN_FREE_FAILURES: '3', LOGIN_FIRST_WAIT_SECONDS: '1', LOGIN_MAX_WAIT_SECONDS: '2', GATEWAY_LOGIN_FAILURES_PER_MINUTE: '8' };

// A POST from a given loopback address (127.0.0.0/8 all reach us), as a client elsewhere would.
function postFrom(address: string, url: string, body: unknown): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', localAddress: address, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('account security through the gateway', function () {
  this.timeout(180_000);
  let formation: Formation;

  before(async () => {
    formation = await startFormation({ ...LIMITS, PBKDF2_ITERATIONS: String(ITERATIONS) });
  });
  after(() => formation?.stop());

  const register = (username: string, password: string) =>
    call(`${formation.gateway}/users`, { body: { username, password, roles: ['Student'] } });
  const login = (username: string, password: string) => call(`${formation.gateway}/login`, { body: { username, password } });
  const refresh = (token: string) => call(`${formation.gateway}/refresh`, { method: 'POST', token });

  it('lets each refresh token work once: a replayed one revokes its whole login, so the legitimate holder must log in again', async () => {
    assert.equal((await register('rotor', 'rotor password')).status, 201);
    const first = (await login('rotor', 'rotor password')).body;
    const second = await refresh(first.refresh_token);
    assert.equal(second.status, 200);
    assert.notEqual(second.body.refresh_token, first.refresh_token);
    // The thief replays the first refresh token: refused, and the family is revoked.
    const replay = await refresh(first.refresh_token);
    assert.equal(replay.status, 401);
    assert.match(replay.body.detail, /used before/);
    // The legitimate holder's newer token is refused too.
    assert.equal((await refresh(second.body.refresh_token)).status, 401);
    // Another login is another family, untouched.
    const other = (await login('rotor', 'rotor password')).body;
    assert.equal((await refresh(other.refresh_token)).status, 200);
  });

  it('refuses a refresh token the database does not know as current, and an access token', async () => {
    const made = await formation.keys.sign({ sub: 'rotor', jti: 'never-issued', aud: 'enrollment-gateway/refresh' });
    assert.equal((await refresh(made)).status, 401);
    const { access_token } = (await login('rotor', 'rotor password')).body;
    assert.equal((await refresh(access_token)).status, 401);
  });

  it('logs out: the refresh token and every one of its login stop working (204, again 204)', async () => {
    const tokens = (await login('rotor', 'rotor password')).body;
    const next = (await refresh(tokens.refresh_token)).body;
    const out = await call(`${formation.gateway}/logout`, { method: 'POST', token: next.refresh_token });
    assert.equal(out.status, 204);
    assert.equal((await refresh(next.refresh_token)).status, 401);
    assert.equal((await call(`${formation.gateway}/logout`, { method: 'POST', token: next.refresh_token })).status, 204);
    assert.equal((await call(`${formation.gateway}/logout`, { method: 'POST', token: next.access_token })).status, 401);
  });

  it('changes a password (the user with the current one, or a Registrar) and revokes every refresh token of that user', async () => {
    assert.equal((await register('changer', 'first password')).status, 201);
    const a = (await login('changer', 'first password')).body;
    const b = (await login('changer', 'first password')).body;
    const change = (token: string, body: unknown, who = 'changer') => call(`${formation.gateway}/users/${who}/password`, { method: 'PUT', token, body });
    assert.equal((await change(a.access_token, { new_password: 'second password' })).status, 422, 'the current password is required');
    assert.equal((await change(a.access_token, { current_password: 'wrong password', new_password: 'second password' })).status, 403);
    assert.equal((await change(a.access_token, { current_password: 'first password', new_password: 'short' })).status, 422);
    const rotorToken = (await login('rotor', 'rotor password')).body.access_token;
    assert.equal((await change(rotorToken, { new_password: 'second password' })).status, 403, 'nobody else may');
    assert.equal((await change(a.access_token, { current_password: 'first password', new_password: 'second password' })).status, 204);
    assert.equal((await refresh(a.refresh_token)).status, 401);
    assert.equal((await refresh(b.refresh_token)).status, 401);
    assert.equal((await login('changer', 'first password')).status, 401);
    const c = (await login('changer', 'second password')).body;
    const registrar = (await login('registrar', 'dev-password')).body.access_token;
    assert.equal((await change(registrar, { new_password: 'third password' })).status, 204);
    assert.equal((await refresh(c.refresh_token)).status, 401);
    assert.equal((await login('changer', 'third password')).status, 200);
  });

  it(`logs in with a hash Python made at 260,000 iterations, then stores it at ${ITERATIONS}`, async () => {
    const hash = execFileSync(
      'python3',
      ['-c', 'import base64,hashlib,sys; print("pbkdf2_sha256$260000$pysalt$" + base64.b64encode(hashlib.pbkdf2_hmac("sha256", sys.argv[1].encode(), b"pysalt", 260000)).decode())', 'django password'],
      { encoding: 'utf8' },
    ).trim();
    const primary = await Database.open(formation.env.USERS_DB!);
    const { lastID } = await primary.run('INSERT INTO users (username, password_hash) VALUES (?, ?)', ['djangouser', hash]);
    await primary.run("INSERT INTO user_roles (user_id, role) VALUES (?, 'Student')", [lastID]);
    const reply = await login('djangouser', 'django password');
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const stored = await waitFor('the hash to be made again', async () => {
      const row = await primary.get<{ password_hash: string }>("SELECT password_hash FROM users WHERE username = 'djangouser'");
      return row!.password_hash !== hash && row!.password_hash;
    }, 5000, 100).finally(() => primary.close());
    assert.match(stored, new RegExp(`^pbkdf2_sha256\\$${ITERATIONS}\\$`));
    assert.equal((await login('djangouser', 'django password')).status, 200);
    await linesMatching(formation.log, /users\.\d\s+\| rehashed the password of djangouser at 300000 iterations/);
  });

  it('holds back one account however many addresses guess at it (429, Retry-After), and lets the real user in once the wait is over', async () => {
    assert.equal((await register('target', 'the real password')).status, 201);
    const statuses: number[] = [];
    let retryAfter: unknown;
    for (let guess = 0; guess < 6; guess++) {
      const reply = await postFrom(`127.0.0.${10 + guess}`, `${formation.gateway}/login`, { username: 'target', password: `guess number ${guess}` });
      statuses.push(reply.status);
      if (reply.status === 429) retryAfter ??= reply.headers['retry-after'];
    }
    // Three free failures, then waits of 1 s, 2 s, 2 s (the cap): the fast guesses after the third are held back.
    assert.deepEqual(statuses.slice(0, 4), [401, 401, 401, 401]);
    assert.ok(statuses.slice(4).every((status) => status === 429), JSON.stringify(statuses));
    assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 2, `Retry-After ${retryAfter}`);
    // While the wait runs, even the right password is held back; after it, it works.
    assert.equal((await login('target', 'the real password')).status, 429);
    await sleep(2100);
    assert.equal((await login('target', 'the real password')).status, 200);
  });

  it('holds back one address guessing at many accounts (429 from the gateway, Retry-After 60)', async () => {
    const statuses: number[] = [];
    for (let guess = 0; guess < 10; guess++) {
      statuses.push((await postFrom('127.0.0.99', `${formation.gateway}/login`, { username: `nobody${guess}`, password: 'a wrong password' })).status);
    }
    assert.deepEqual(statuses.slice(0, 8), Array(8).fill(401));
    assert.deepEqual(statuses.slice(9), [429]);
    const held = await postFrom('127.0.0.99', `${formation.gateway}/login`, { username: 'student001', password: 'dev-password' });
    assert.equal(held.status, 429);
    assert.equal(held.headers['retry-after'], '60');
    assert.equal(held.body.status, 429);
    // Another address is not held back.
    assert.equal((await postFrom('127.0.0.98', `${formation.gateway}/login`, { username: 'student001', password: 'dev-password' })).status, 200);
  });

  it('refuses tokens issued or valid only in the future, and a sub that is not a string, at the gateway and at each instance', async () => {
    const now = Math.floor(Date.now() / 1000);
    const tokens = [
      await formation.keys.accessToken('student001', ['Student'], { iat: now + 600 }),
      await formation.keys.accessToken('student001', ['Student'], { nbf: now + 600 }),
      await formation.keys.accessToken(12345 as unknown as string, ['Student']),
    ];
    for (const token of tokens) {
      for (const url of [formation.gateway, formation.instances[0]]) {
        assert.equal((await call(`${url}/classes`, { token })).status, 401, `${url} ${token}`);
      }
    }
  });
});

// Idempotency-Key: a write sent again with its key is carried out once and answered as the first
// time; the key is refused for another request, and never honoured on /refresh.
import assert from 'node:assert/strict';
import path from 'node:path';
import { Database } from '../lib/db.ts';
import { enrollmentInProcess, usersInProcess, type LocalService } from './in-process.ts';
import { call, makeTestKeys, tempDir, type TestKeys } from '../harness/support.ts';

describe('Idempotency-Key on writes', () => {
  let keys: TestKeys;
  let enrollment: LocalService;
  let enrollmentDb: string;
  let users: LocalService;

  before(async () => {
    const dir = await tempDir('idempotency');
    keys = await makeTestKeys(dir);
    enrollmentDb = path.join(dir, 'enrollment.db');
    enrollment = await enrollmentInProcess(enrollmentDb, keys);
    users = (await usersInProcess({ keys })).service;
  });
  after(async () => {
    await enrollment?.stop();
    await users?.stop();
  });

  const withKey = (key: string) => ({ 'Idempotency-Key': key });

  it('carries out a write sent twice with one key once, and answers the repeat with the first answer', async () => {
    const token = await keys.accessToken('registrar', ['Registrar']);
    const body = { department: 'IDEM', course_code: '101', title: 'Once only' };
    const first = await call(`${enrollment.url}/classes`, { token, body, headers: withKey('class-once') });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const again = await call(`${enrollment.url}/classes`, { token, body, headers: withKey('class-once') });
    assert.equal(again.status, 201);
    assert.deepEqual(again.body, first.body);
    assert.equal(again.headers.get('location'), first.headers.get('location'));
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(first.headers.get('idempotent-replayed'), null);
    // Without a key, the same body is a second request: the class exists.
    assert.equal((await call(`${enrollment.url}/classes`, { token, body })).status, 409);
    const db = await Database.open(enrollmentDb, { readonly: true });
    const { count } = (await db.get<{ count: number }>("SELECT count(*) AS count FROM classes WHERE department = 'IDEM'"))!;
    await db.close();
    assert.equal(count, 1);
  });

  it('refuses a key sent again with another request or by another caller (422), and a malformed key', async () => {
    const token = await keys.accessToken('registrar', ['Registrar']);
    const body = { department: 'IDEM', course_code: '102', title: 'First' };
    assert.equal((await call(`${enrollment.url}/classes`, { token, body, headers: withKey('class-two') })).status, 201);
    const other = await call(`${enrollment.url}/classes`, { token, body: { ...body, title: 'Second' }, headers: withKey('class-two') });
    assert.equal(other.status, 422);
    assert.match(other.body.detail, /another request/);
    const someoneElse = await keys.accessToken('registrar2', ['Registrar']);
    assert.equal((await call(`${enrollment.url}/classes`, { token: someoneElse, body, headers: withKey('class-two') })).status, 422);
    assert.equal((await call(`${enrollment.url}/classes`, { token, body, headers: withKey('a key with spaces') })).status, 422);
  });

  it('records no key for a write that failed, so sending it again is a new try', async () => {
    const token = await keys.accessToken('student001', ['Student']);
    const missing = await call(`${enrollment.url}/me/enrollments`, { token, body: { section_id: 999_999 }, headers: withKey('enroll-missing') });
    assert.equal(missing.status, 404);
    assert.equal((await call(`${enrollment.url}/me/enrollments`, { token, body: { section_id: 999_999 }, headers: withKey('enroll-missing') })).headers.get('idempotent-replayed'), null);
  });

  it('registers once for a registration sent twice with one key', async () => {
    const body = { username: 'idem-user', password: 'idem password', roles: ['Student'] };
    const first = await call(`${users.url}/users`, { body, headers: withKey('register-once') });
    const again = await call(`${users.url}/users`, { body, headers: withKey('register-once') });
    assert.equal(first.status, 201);
    assert.equal(again.status, 201);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal((await call(`${users.url}/users`, { body })).status, 409);
  });

  it('ignores a key on a login, which writes nothing', async () => {
    const login = () => call(`${users.url}/login`, { body: { username: 'idem-user', password: 'idem password' }, headers: withKey('login-once') });
    const [first, again] = [await login(), await login()];
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('idempotent-replayed'), null);
    assert.notEqual(again.body.access_token, first.body.access_token);
  });

  it('never replays a refresh: its token used twice revokes its login, key or not', async () => {
    const { refresh_token } = (await call(`${users.url}/login`, { body: { username: 'idem-user', password: 'idem password' } })).body;
    const refresh = () => call(`${users.url}/refresh`, { method: 'POST', token: refresh_token, headers: withKey('refresh-once') });
    assert.equal((await refresh()).status, 200);
    const again = await refresh();
    assert.equal(again.status, 401);
    assert.match(again.body.detail, /used before/);
  });
});

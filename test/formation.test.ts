// The whole formation from the Procfile under the real Foreman, as `npm start` runs it, on ports
// and directories of the test's own: three LiteFS nodes, the users service, three enrollment
// instances, each instance reachable on its own port and named in Foreman's log.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from '../lib/config.ts';
import { DEV_PASSWORD } from '../lib/roster.ts';
import { call, isRunning, makeTestKeys, randomBasePort, tempDir, type TestKeys } from './support.ts';

const FORMATION = 'users=1,enrollment=3,primary=1,secondary1=1,secondary2=1';

describe('the formation under Foreman (Procfile)', function () {
  this.timeout(120_000);
  let foreman: ChildProcess;
  let keys: TestKeys;
  let env: NodeJS.ProcessEnv;
  const log: string[] = [];
  const basePort = randomBasePort();
  const port = { users: basePort, enrollment: [basePort + 100, basePort + 101, basePort + 102] };

  before(async () => {
    const dir = await tempDir('formation');
    keys = await makeTestKeys(dir);
    env = {
      ...process.env,
      BASE_PORT: String(basePort),
      LITEFS_DIR: path.join(dir, 'litefs'),
      USERS_DB: path.join(dir, 'litefs/primary/mnt/users.db'),
      USERS_REPLICA_DBS: `${dir}/litefs/secondary1/mnt/users.db,${dir}/litefs/secondary2/mnt/users.db`,
      ENROLLMENT_DB: path.join(dir, 'enrollment.db'),
      JWKS_PUBLIC: keys.publicFile,
      JWKS_PRIVATE: keys.privateFile,
      PBKDF2_ITERATIONS: '1000',
    };
    spawnSync(process.execPath, ['bin/seed-enrollment.ts'], { cwd: ROOT, env, stdio: 'ignore' });
    foreman = spawn('foreman', ['start', '--procfile', 'Procfile', '--port', String(basePort), '--formation', FORMATION], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so that cleanup reaches every child
    });
    const collect = (chunk: Buffer) => log.push(...chunk.toString().split('\n').filter(Boolean));
    foreman.stdout!.on('data', collect);
    foreman.stderr!.on('data', collect);
    const deadline = Date.now() + 60_000;
    for (const url of [`http://127.0.0.1:${port.users}/health`, ...port.enrollment.map((p) => `http://127.0.0.1:${p}/health`)]) {
      while ((await call(url).catch(() => ({ status: 0 }))).status !== 200) {
        if (!isRunning(foreman) || Date.now() > deadline) throw new Error(`${url} never answered:\n${log.join('\n')}`);
        await sleep(200);
      }
    }
  });

  after(async () => {
    if (foreman && isRunning(foreman)) {
      const exited = new Promise((resolve) => foreman.once('exit', resolve));
      process.kill(-foreman.pid!, 'SIGTERM');
      if ((await Promise.race([exited, sleep(15_000, 'late')])) === 'late') process.kill(-foreman.pid!, 'SIGKILL');
    }
    spawnSync('bash', ['bin/litefs-reset.sh'], { cwd: ROOT, env, stdio: 'inherit' });
  });

  it('seeds the users database through the primary: a seeded student logs in', async () => {
    const reply = await call(`http://127.0.0.1:${port.users}/login`, { body: { username: 'student001', password: DEV_PASSWORD } });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.deepEqual(reply.body.access_token.roles, ['Student']);
  });

  it('runs three enrollment instances, each on its own port, named in Foreman\'s log', async () => {
    const token = await keys.accessToken('student001', ['Student']);
    for (const instancePort of port.enrollment) {
      const reply = await call(`http://127.0.0.1:${instancePort}/classes`, { token });
      assert.equal(reply.status, 200);
      assert.ok(reply.body.classes.length >= 10);
    }
    await sleep(300);
    for (const instance of [1, 2, 3]) {
      assert.ok(
        log.some((line) => new RegExp(`enrollment\\.${instance}\\s+\\| GET /classes 200 \\d+ms user=student001`).test(line)),
        `no line from enrollment.${instance}:\n${log.join('\n')}`,
      );
    }
  });

  it('refuses a request without a token on every instance', async () => {
    for (const instancePort of port.enrollment) {
      assert.equal((await call(`http://127.0.0.1:${instancePort}/classes`)).status, 401);
    }
  });

  it('names the LiteFS replica that served each login', async () => {
    await sleep(300);
    assert.ok(log.some((line) => /users\.1\s+\| POST \/login 200 \d+ms user=student001 replica=secondary[12]/.test(line)), log.join('\n'));
  });
});

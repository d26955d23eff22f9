// Three hosts (bin/hosts.sh: network namespaces, a Foreman per host, LiteFS over a bridge, the
// gateway in front) under load through the gateway: a secondary host killed and started again, a
// secondary host cut off for 10 s and healed, the primary's host killed and started again; then
// `bin/hosts.sh down` leaves nothing behind. Each scenario prints what the clients saw.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from '../lib/config.ts';
import { Database } from '../lib/db.ts';
import { MAX_LAG_MS } from '../lib/replica-quorum.ts';
import { DEV_PASSWORD, STUDENTS } from '../lib/roster.ts';
import { cannotLogIn, printTallies, startLoad, tallyProblems, type Load, type Tallies } from '../harness/load.ts';
import { randomBasePort, tempDir } from '../harness/support.ts';
import { HOST_TARGETS, killUnderLoad, printReport, problems } from '../bin/kill-under-load.ts';
import { waitFor } from '../harness/wait.ts';

const run = promisify(execFile);
const PREFIX = 'egwt';

describe('three hosts under load (bin/hosts.sh: network namespaces, LiteFS over a bridge)', function () {
  this.timeout(300_000); // each scenario; the whole file takes about two minutes
  const basePort = randomBasePort();
  const gateway = `http://127.0.0.1:${basePort + 500}`;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let load: Load;
  const hosts = (...args: string[]) => run('bin/hosts.sh', args, { cwd: ROOT, env, maxBuffer: 1 << 24 });
  const mount = (host: string) => path.join(dir, host, 'litefs', { h1: 'primary', h2: 'secondary1', h3: 'secondary2' }[host]!, 'mnt');
  const position = (host: string, db = 'users.db') => readFile(path.join(mount(host), `${db}-pos`), 'utf8').catch(() => 'none');
  const caughtUp = async (host: string) => (await position(host)) === (await position('h1')) && (await position(host, 'enrollment.db')) === (await position('h1', 'enrollment.db'));
  // A server's state at the gateway: h2u is h2's users instance, h3e h3's enrollment instance.
  const serverStatus = async (server: string) => {
    const csv = await (await fetch(`http://127.0.0.1:${basePort + 501}/;csv`)).text();
    const backend = server.endsWith('u') ? 'users' : 'enrollment';
    return csv.split('\n').find((line) => line.startsWith(`${backend},${server},`))?.split(',')[17];
  };
  const report = (title: string, kinds: Tallies) => {
    console.log(`      ${title}`);
    printTallies(kinds, (line) => console.log(`        ${line}`));
  };

  before(async () => {
    dir = await tempDir('hosts');
    env = { ...process.env, BASE_PORT: String(basePort), HOSTS_DIR: dir, HOSTS_PREFIX: PREFIX, HOSTS_SUBNET: '198.18.7', USERS_BACKUP_INTERVAL_SECONDS: '5' };
    await hosts('up');
  });
  after(async () => {
    await load?.stop();
    await hosts('down').catch(() => {});
  });

  it("0. every process of every host (litefs, users, enrollment) SIGKILLed in turn: no login or read fails, writes get at most 503 + Retry-After, each is back", async () => {
    try {
      const kills = await killUnderLoad({ basePort, kill: HOST_TARGETS, betweenMs: 1000, registerEveryMs: 200, hostsPrefix: PREFIX, log: () => {} });
      printReport(kills, (line) => console.log(`      ${line}`));
      assert.deepEqual(problems(kills), []);
      for (const kind of ['register', 'enroll', 'drop']) assert.equal(kills.kinds[kind].failures, 0, `${kind}: ${JSON.stringify(kills.kinds[kind].examples)}`);
    } finally {
      // The load for the hosts' deaths below.
      load = await startLoad(gateway, { registerEveryMs: 200 });
      await sleep(3000);
      report('warm-up, every host up', load.takeTallies());
    }
  });

  it('1. a secondary host killed: no login or read fails, writes go on; back, it catches up and serves again', async () => {
    await hosts('kill', 'h2');
    await sleep(5000);
    await hosts('up', 'h2');
    await waitFor('h2 caught up with the primary', () => caughtUp('h2'), 30_000);
    await waitFor('the gateway sends logins to h2 again', async () => (await serverStatus('h2u')) === 'UP', 30_000);
    const kinds = load.takeTallies();
    report('1. h2 killed for 5 s, then started again', kinds);
    assert.deepEqual(tallyProblems(kinds), []);
    for (const kind of ['register', 'enroll', 'drop']) assert.equal(kinds[kind].failures + kinds[kind].refused, 0, `${kind}: ${JSON.stringify(kinds[kind])}`);
  });

  it('2. a secondary host cut off for 10 s: no login or read fails, its lost replica answers none; healed, it catches up and serves again', async () => {
    await hosts('partition', 'h3');
    const cutAt = Date.now();
    let lostAfterMs: number | undefined;
    const downAtGateway = new Set<string>();
    while (Date.now() - cutAt < 10_000) {
      // What LiteFS shows (no time limit here: a slow read under load is not a lost primary).
      const lag = Number(await readFile(path.join(mount('h3'), '.lag'), 'utf8').catch(() => '0'));
      const connected = (await readFile(path.join(mount('h3'), '.primary')).then(() => true, () => false)) && lag < MAX_LAG_MS;
      if (!connected) lostAfterMs ??= Date.now() - cutAt;
      for (const server of ['h3u', 'h3e']) if ((await serverStatus(server))?.startsWith('DOWN')) downAtGateway.add(server);
      await sleep(100);
    }
    await hosts('heal', 'h3');
    await waitFor('h3 caught up with the primary', () => caughtUp('h3'), 30_000);
    await waitFor('the gateway sends logins and reads to h3 again', async () => (await serverStatus('h3u')) === 'UP' && (await serverStatus('h3e')) === 'UP', 30_000);
    const kinds = load.takeTallies();
    report(`2. h3 cut off for 10 s (its replica lost the primary after ${lostAfterMs ?? '-'} ms), then healed`, kinds);
    assert.deepEqual(tallyProblems(kinds), []);
    assert.ok(lostAfterMs !== undefined, "h3's replica never showed that it had lost the primary");
    assert.deepEqual([...downAtGateway].sort(), ['h3e', 'h3u'], 'the gateway kept sending logins or reads to h3 after its replica had lost the primary');
    // What h3 was sent after losing the primary, before the gateway marked it down, it answered 503
    // (lib/replica-quorum.ts), and the gateway sent on to another host: no login failed above.
    const h3 = await readFile(path.join(dir, 'h3', 'formation.log'), 'utf8');
    assert.match(h3, /(POST \/login|GET \/classes|GET \/health) 503/);
  });

  it("3. the primary's host killed: logins and reads go on, writes get 503 + Retry-After; back, writes resume within 5 s and nothing is lost", async () => {
    const registeredBefore = [...load.registered];
    await hosts('kill', 'h1');
    await sleep(6000);
    const away = load.takeTallies();
    await hosts('up', 'h1');
    const back = Date.now();
    const student = STUDENTS[110];
    const login = await fetch(`${gateway}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: student, password: DEV_PASSWORD }) });
    const token = ((await login.json()) as { access_token: string }).access_token;
    const writesBackAfterMs = await waitFor(
      'a registration and an enrollment write through the gateway',
      async () => {
        const registered = await fetch(`${gateway}/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: `back-${Date.now()}`, password: 'back password', roles: ['Student'] }) });
        const enrolled = await fetch(`${gateway}/me/enrollments/999999`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
        return registered.status === 201 && enrolled.status === 404 && Math.max(1, Date.now() - back);
      },
      20_000,
      100,
    );
    await sleep(2000);
    const after = load.takeTallies();
    report('3a. h1 (the primary) killed, for 6 s', away);
    report(`3b. h1 started again: writes taken ${writesBackAfterMs} ms after its mount was back`, after);
    assert.deepEqual(tallyProblems(away), []);
    assert.deepEqual(tallyProblems(after), []);
    // A replica answers what needs no write (enrolling again: 409; dropping what is not held: 404),
    // so of an enroll-then-drop pair, at least one side needs the primary.
    assert.ok(away.register.refused > 0, `no registration met the primary's absence: ${JSON.stringify(away.register)}`);
    assert.ok(away.enroll.refused + away.drop.refused > 0, `no enrollment write met the primary's absence: ${JSON.stringify([away.enroll, away.drop])}`);
    for (const kind of ['register', 'enroll', 'drop']) assert.equal(away[kind].failures, 0, `${kind}: ${JSON.stringify(away[kind].examples)}`);
    assert.ok(writesBackAfterMs <= 5000, `writes came back ${writesBackAfterMs} ms after the primary`);
    assert.deepEqual(await cannotLogIn(gateway, registeredBefore), [], 'an account acknowledged before the kill is gone');
  });

  it("h2 keeps snapshots of the users database, exported from h1 over the bridge, with the accounts registered under load", async () => {
    const snapshots = path.join(dir, 'h2', 'backups', 'users');
    const newest = (await readdir(snapshots)).filter((name) => name.endsWith('.db')).sort().at(-1);
    assert.ok(newest, `no snapshot in ${snapshots}`);
    const db = await Database.open(path.join(snapshots, newest), { readonly: true });
    try {
      const { count } = (await db.get<{ count: number }>('SELECT count(*) AS count FROM users WHERE username IN (SELECT value FROM json_each(?))', [JSON.stringify(load.registered)]))!;
      assert.ok(count > 0, `${newest} holds none of the ${load.registered.length} accounts registered under load`);
    } finally {
      await db.close();
    }
  });

  it('4. bin/hosts.sh down leaves no namespace, bridge, mount or process behind', async () => {
    await load.stop();
    await hosts('down');
    const [{ stdout: namespaces }, { stdout: links }, mounts, { stdout: processes }] = await Promise.all([
      run('ip', ['netns', 'list']),
      run('ip', ['-br', 'link']),
      readFile('/proc/self/mounts', 'utf8'),
      run('ps', ['-eo', 'args']),
    ]);
    assert.doesNotMatch(namespaces, new RegExp(`^${PREFIX}-`, 'm'));
    assert.doesNotMatch(links, new RegExp(`^${PREFIX}-`, 'm'));
    assert.ok(!mounts.includes(dir), mounts);
    assert.ok(!processes.includes(dir), processes.split('\n').filter((line) => line.includes(dir)).join('\n'));
  });
});

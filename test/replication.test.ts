// The users service on a real LiteFS cluster: writes to the primary, logins from the two
// secondaries in turn, and no failed login while a secondary is dead.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Database } from '../lib/db.ts';
import { startCluster, startUsersOn, type Cluster, type Node } from '../harness/litefs-cluster.ts';
import { call, type RunningService } from '../harness/support.ts';
import { linesMatching, waitFor } from '../harness/wait.ts';

const PASSWORD = 'replicated password';

async function appearsOn(file: string, username: string, timeoutMs = 10_000): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    try {
      const db = await Database.open(file, { readonly: true });
      const row = await db.get('SELECT 1 FROM users WHERE username = ?', [username]).finally(() => db.close());
      if (row) return performance.now() - started;
    } catch {
      // not there yet: no file or no table
    }
    await sleep(2);
  }
  throw new Error(`${username} did not reach ${file} within ${timeoutMs} ms`);
}

describe('read replication over real LiteFS (users.ts)', function () {
  this.timeout(120_000);
  let cluster: Cluster;
  let users: RunningService;
  const down = new Set<Node>(); // killed by a test, and not started again yet

  before(async () => {
    cluster = await startCluster();
    users = await startUsersOn(cluster, 1000);
  });
  // Each test starts with every node up, whatever the one before did or where it failed.
  afterEach(async () => {
    for (const node of down) await start(node);
  });
  after(async () => {
    await users?.stop();
    await cluster?.stop();
  });

  const kill = (node: Node) => {
    down.add(node);
    return cluster.kill(node);
  };
  const start = async (node: Node) => {
    await cluster.start(node); // bin/litefs.sh clears the stale mount first
    down.delete(node);
  };
  const register = (username: string) => call(`${users.url}/users`, { body: { username, password: PASSWORD, roles: ['Student'] } });
  const login = (username: string) => call(`${users.url}/login`, { body: { username, password: PASSWORD } });
  const LOGIN_LINE = /^POST \/login 200 .* replica=(\S+)$/;

  async function registeredOnBothSecondaries(username: string): Promise<string> {
    assert.equal((await register(username)).status, 201);
    await appearsOn(cluster.dbFile('secondary1'), username);
    await appearsOn(cluster.dbFile('secondary2'), username);
    return username;
  }

  // Logs in until each of `replicas` has served a login: a secondary that was benched is given
  // work again once its bench is over.
  async function untilServedBy(username: string, ...replicas: string[]): Promise<void> {
    const seen = users.logs.length;
    await waitFor(`logins served by ${replicas.join(' and ')}`, async () => {
      assert.equal((await login(username)).status, 200);
      const served = new Set(users.logs.slice(seen).map((line) => LOGIN_LINE.exec(line)?.[1]));
      return replicas.every((replica) => served.has(replica));
    });
  }

  // Which replica served each of `count` logins, from the service's own log lines.
  async function loginsServedBy(username: string, count: number): Promise<Record<string, number>> {
    const seen = users.logs.length;
    const replies = await Promise.all(Array.from({ length: count }, () => login(username)));
    assert.deepEqual(
      replies.filter((reply) => reply.status !== 200),
      [],
      'every login must succeed',
    );
    const served: Record<string, number> = {};
    for (const line of await linesMatching(users.logs, LOGIN_LINE, { from: seen, count })) {
      const replica = LOGIN_LINE.exec(line)![1];
      served[replica] = (served[replica] ?? 0) + 1;
    }
    return served;
  }

  it('1. a registration reaches both secondaries', async () => {
    assert.equal((await register('ada')).status, 201);
    const lag1 = await appearsOn(cluster.dbFile('secondary1'), 'ada');
    const lag2 = await appearsOn(cluster.dbFile('secondary2'), 'ada');
    console.log(`      registration visible on secondary1 after ${lag1.toFixed(1)} ms, secondary2 after ${lag2.toFixed(1)} ms`);
  });

  it('2. spreads 200 logins evenly over the two secondaries', async () => {
    const username = await registeredOnBothSecondaries('spread');
    await untilServedBy(username, 'secondary1', 'secondary2');
    assert.deepEqual(await loginsServedBy(username, 200), { secondary1: 100, secondary2: 100 });
  });

  it('3. with a secondary killed, 200 logins all succeed from the other; restarted, it catches up and serves again', async () => {
    const username = await registeredOnBothSecondaries('survivor');
    await kill('secondary1');
    assert.deepEqual(await loginsServedBy(username, 200), { secondary2: 200 });

    assert.equal((await register('grace')).status, 201); // a write it misses while down
    await start('secondary1');
    await appearsOn(cluster.dbFile('secondary1'), 'grace');
    await untilServedBy('grace', 'secondary1');
    assert.deepEqual(await loginsServedBy('grace', 20), { secondary1: 10, secondary2: 10 });
  });

  it('3b. with both secondaries killed, logins fall back to the primary', async () => {
    const username = await registeredOnBothSecondaries('fallback');
    await kill('secondary1');
    await kill('secondary2');
    assert.deepEqual(await loginsServedBy(username, 20), { primary: 20 });
  });

  it('4. 100 register-then-login pairs at once: no failure', async () => {
    const outcomes = await Promise.all(
      Array.from({ length: 100 }, async (_, index) => {
        const username = `pair${index}`;
        const registered = await register(username);
        const loggedIn = await login(username);
        return `${registered.status} ${loggedIn.status}`;
      }),
    );
    assert.deepEqual(outcomes, Array(100).fill('201 200'));
  });

  it('5. a write that reaches a secondary is refused with an error, never silently lost', async () => {
    await registeredOnBothSecondaries('written');
    const secondary = await Database.open(cluster.dbFile('secondary2'));
    try {
      await assert.rejects(
        secondary.run("INSERT INTO users (username, password_hash) VALUES ('sneaky', 'x')"),
        /SQLITE_IOERR|SQLITE_READONLY/,
      );
    } finally {
      await secondary.close();
    }
    const primary = await Database.open(cluster.dbFile('primary'), { readonly: true });
    assert.equal(await primary.get("SELECT 1 FROM users WHERE username = 'sneaky'"), undefined);
    await primary.close();
  });
});

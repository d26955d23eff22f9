// Logins under load while a LiteFS secondary is SIGKILLed again and again (and restarted by
// bin/litefs.sh, as its supervisor does): no login fails, none is slow, a user registered during the
// storm logs in at once, and the users service never dies.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startCluster, startUsersOn, type Cluster } from '../harness/litefs-cluster.ts';
import { call, isRunning, quantile, type RunningService } from '../harness/support.ts';

const STORM_MS = Number(process.env.STORM_SECONDS ?? 30) * 1000;
const PASSWORD = 'storm password';

describe('a LiteFS secondary killed again and again under login load (users.ts on real LiteFS)', function () {
  this.timeout(STORM_MS + 120_000);
  let cluster: Cluster;
  let users: RunningService;

  before(async () => {
    cluster = await startCluster();
    users = await startUsersOn(cluster, 10_000);
  });
  after(async () => {
    await users?.stop();
    await cluster?.stop();
  });

  const register = (username: string) => call(`${users.url}/users`, { body: { username, password: PASSWORD, roles: ['Student'] } });
  const login = (username: string) => call(`${users.url}/login`, { body: { username, password: PASSWORD } });

  it(`keeps every login fast and correct for ${STORM_MS / 1000} s of kills`, async () => {
    assert.equal((await register('storm')).status, 201);
    await sleep(200);
    const started = Date.now();
    const stormOver = () => Date.now() - started > STORM_MS;
    const latencies: number[] = [];
    const failures: string[] = [];

    const loginLoop = async () => {
      while (!stormOver()) {
        const sent = performance.now();
        const reply = await login('storm').catch((error: Error) => ({ status: 0, body: error.message }));
        latencies.push(performance.now() - sent);
        if (reply.status !== 200) failures.push(`login ${reply.status} ${JSON.stringify(reply.body)}`);
      }
    };
    let registered = 0;
    const registerLoop = async () => {
      while (!stormOver()) {
        const username = `storm${registered++}`;
        const made = await register(username).catch((error: Error) => ({ status: 0, body: error.message }));
        if (made.status !== 201) failures.push(`register ${username} ${made.status} ${JSON.stringify(made.body)}`);
        const reply = await login(username).catch((error: Error) => ({ status: 0, body: error.message }));
        if (reply.status !== 200) failures.push(`login right after registering ${username}: ${reply.status} ${JSON.stringify(reply.body)}`);
        await sleep(250);
      }
    };
    let kills = 0;
    const killLoop = async () => {
      while (!stormOver()) {
        await sleep(2500);
        await cluster.kill('secondary1');
        kills++;
        await sleep(1500);
        await cluster.start('secondary1');
      }
    };

    await Promise.all([loginLoop(), loginLoop(), loginLoop(), loginLoop(), registerLoop(), killLoop()]);
    const seconds = (Date.now() - started) / 1000;
    const served: Record<string, number> = {};
    for (const line of users.logs) {
      const replica = /^POST \/login 200 .* replica=(\S+)$/.exec(line)?.[1];
      if (replica) served[replica] = (served[replica] ?? 0) + 1;
    }
    console.log(
      `      ${kills} kills; ${latencies.length} logins (${(latencies.length / seconds).toFixed(0)}/s): ` +
        `p50 ${quantile(latencies, 0.5).toFixed(1)} ms, p99 ${quantile(latencies, 0.99).toFixed(1)} ms, ` +
        `slowest ${Math.max(...latencies).toFixed(0)} ms; ${registered} registrations; ${failures.length} failures; ` +
        `served by ${JSON.stringify(served)}`,
    );
    assert.ok(isRunning(users.child), `the users service died:\n${users.logs.slice(-20).join('\n')}`);
    assert.deepEqual(failures.slice(0, 10), []);
    assert.ok(kills >= STORM_MS / 5000, `only ${kills} kills`);
    assert.ok(served.secondary1 > 0 && served.secondary2 > 0, 'both secondaries served logins between kills');
    assert.ok(Math.max(...latencies) < 5000, `slowest login ${Math.max(...latencies).toFixed(0)} ms`);
  });
});

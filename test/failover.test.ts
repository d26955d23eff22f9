// No single death stops logins: the LiteFS primary and a users instance SIGKILLed under load through
// the gateway of the real formation (Foreman, supervisors, HAProxy, LiteFS), by the operator's own
// command (bin/kill-under-load.ts), which also checks that every process came back.
import assert from 'node:assert/strict';
import { killUnderLoad, printReport, problems, type Report } from '../bin/kill-under-load.ts';
import { linesMatching } from '../harness/wait.ts';
import { startFormation, type Formation } from './formation.ts';

describe('deaths under load through the gateway (bin/kill-under-load.ts on the real formation)', function () {
  this.timeout(240_000);
  let formation: Formation;
  let report: Report;

  before(async () => {
    formation = await startFormation();
    report = await killUnderLoad({ basePort: formation.basePort, kill: ['primary', 'primary', 'users.1', 'users.1'], registerEveryMs: 100, betweenMs: 2000, log: () => {} });
    printReport(report, (line) => console.log(`      ${line}`));
  });
  after(() => formation?.stop());

  it('fails no login and no read, and every process comes back', () => {
    assert.deepEqual(problems(report), []);
    assert.ok(report.kinds.login.requests > 50, JSON.stringify(report.kinds.login));
    assert.equal(report.kills.length, 4);
  });

  it('answers registrations 503 with Retry-After while the primary is away, and takes them again after', () => {
    const { register } = report.kinds;
    assert.ok(register.refused > 0, `no registration met the primary's absence: ${JSON.stringify(register)}`);
    assert.equal(register.refusedWithoutRetryAfter, 0);
    assert.ok(report.registered > 10 && report.registeredButCannotLogIn.length === 0, JSON.stringify(report));
  });

  it('takes writes again on every users instance within 2 s of the primary\'s return, with no restart by hand', async () => {
    const primaryKills = report.kills.filter((kill) => kill.target === 'primary');
    assert.equal(primaryKills.length, 2);
    for (const kill of primaryKills) assert.ok(kill.writesBackAfterMs !== undefined && kill.writesBackAfterMs <= 2000, JSON.stringify(kill));
    // Foreman passes the lines on late under load (thousands of request lines): wait for them.
    const died = /users\.\d\s+\| supervise: users died/;
    await linesMatching(formation.log, died, { count: 2 });
    const restarts = formation.log.filter((line) => died.test(line));
    assert.equal(restarts.length, 2, 'only the two users kills restarted a users instance');
  });
});

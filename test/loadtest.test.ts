// bin/loadtest.sh against the real formation under Foreman: a run stopped by SIGINT in its write
// phase removes its sections, the next run completes whatever an earlier one left behind, and a
// phase that fails costs only itself.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { ROOT } from '../lib/config.ts';
import { DEV_PASSWORD } from '../lib/roster.ts';
import { startFormation, type Formation } from './formation.ts';
import { call, isRunning, tempDir } from '../harness/support.ts';

interface Report {
  phases: { name: string; requestsPerSecond: number; spread?: Record<string, number> }[];
  failures: { phase: string; error: string }[];
  stoppedBy?: string;
}

interface Finished {
  code: number | null;
  output: string;
  report: Report;
  svg: string;
}

interface LoadTest {
  child: ChildProcess;
  // Resolves once its output so far matches `pattern`; throws if it ends first.
  printed(pattern: RegExp): Promise<void>;
  finished: Promise<Finished>;
}

const READS = 'reads through the gateway: GET /classes';
const LOGINS = 'logins through the gateway: POST /login';
const EVERY_PHASE = [READS, 'reads straight to the three instances (no gateway)', 'reads straight to one instance', LOGINS, 'write mix through the gateway: enroll / drop / leave waitlist'];

describe('bin/loadtest.sh against the formation under Foreman', function () {
  this.timeout(240_000);
  let formation: Formation;
  const running = new Set<ChildProcess>();

  before(async () => {
    formation = await startFormation();
  });
  after(async () => {
    for (const child of running) if (isRunning(child)) child.kill('SIGKILL');
    await formation?.stop();
  });

  // Few connections: the formation and the load test share a small machine with the test.
  async function loadTest(...args: string[]): Promise<LoadTest> {
    const out = await tempDir('loadtest');
    const child = spawn('bash', ['bin/loadtest.sh', '--log', formation.logFile, '--out', out, '--connections', '8', ...args], {
      cwd: ROOT,
      env: formation.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let output = '';
    const collect = (chunk: Buffer) => (output += chunk.toString());
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const closed = once(child, 'close') as Promise<[number | null]>;
    const finished = closed.then(async ([code]) => {
      const written = await readdir(out);
      const file = (extension: string) => written.find((name) => name.endsWith(extension));
      assert.ok(file('.json') && file('.svg'), `it wrote its JSON and SVG (${written.join(', ')}):\n${output}`);
      const report = JSON.parse(await readFile(path.join(out, file('.json')!), 'utf8')) as Report;
      return { code, output, report, svg: await readFile(path.join(out, file('.svg')!), 'utf8') };
    });
    finished.catch(() => {}); // a test that failed before awaiting it has said why already
    return {
      child,
      async printed(pattern) {
        while (!pattern.test(output)) {
          if (!isRunning(child)) throw new Error(`it ended before printing ${pattern}:\n${output}`);
          await Promise.race([once(child.stdout!, 'data'), closed]);
        }
      },
      finished,
    };
  }

  const registrarToken = () => formation.keys.accessToken('registrar', ['Registrar']);

  async function loadTestClass(): Promise<{ id: number; sections: { id: number; section_number: number }[] } | undefined> {
    const reply = await call(`${formation.gateway}/classes`, { token: await registrarToken() });
    assert.equal(reply.status, 200);
    const { classes } = reply.body as { classes: { id: number; department: string; course_code: string; sections: { id: number; section_number: number }[] }[] };
    return classes.find((entry) => entry.department === 'LOAD' && entry.course_code === 'TEST');
  }
  const offeredSections = async () => (await loadTestClass())?.sections.map((section) => section.section_number) ?? [];

  it('stopped by SIGINT in its write phase, removes its sections; the next run completes every phase whatever an earlier one left', async () => {
    // A long phase, so that only the signal can end it soon.
    const stopped = await loadTest('--phases', 'writes', '--duration', '120');
    await stopped.printed(/write mix through the gateway/);
    assert.deepEqual(await offeredSections(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 'its sections are offered while it writes');
    stopped.child.kill('SIGINT');
    const first = await stopped.finished;
    assert.equal(first.code, 130, first.output);
    assert.equal(first.report.stoppedBy, 'SIGINT');
    assert.deepEqual(first.report.failures, [{ phase: 'writes', error: 'interrupted by SIGINT' }]);
    assert.deepEqual(await offeredSections(), [], 'it removed its sections when stopped');

    // What a run that could not remove its sections (SIGKILL, or the formation down) leaves behind.
    const { id } = (await loadTestClass())!;
    for (const number of [1, 5]) {
      const made = await call(`${formation.gateway}/sections`, { token: await registrarToken(), body: { class_id: id, section_number: number, capacity: 3, instructor: 'prof.chen' } });
      assert.equal(made.status, 201, JSON.stringify(made.body));
    }

    const second = await (await loadTest('--duration', '2')).finished;
    assert.deepEqual(second.report.failures, [], second.output);
    assert.ok(second.code === 0 || second.code === 1, `exit ${second.code}: 1 is a missed target, which a loaded machine may miss:\n${second.output}`);
    assert.deepEqual(second.report.phases.map((phase) => phase.name), EVERY_PHASE);
    const spread = (name: string) => Object.keys(second.report.phases.find((phase) => phase.name === name)!.spread!).sort();
    assert.deepEqual(spread(READS), ['enrollment.1', 'enrollment.2', 'enrollment.3'], 'reads are counted per instance');
    assert.ok(spread(LOGINS).length > 0, 'logins are counted per replica from the lines of every users instance');
    for (const name of EVERY_PHASE) assert.ok(second.svg.includes(name), `the SVG shows ${name}`);
    assert.deepEqual(await offeredSections(), [], 'no LOAD TEST section is offered afterwards');
  });

  it('a run whose write phase fails still writes the read and login figures, and names the failure', async () => {
    // The write phase works as the registrar: with its password changed, it cannot log in.
    const session = await call(`${formation.gateway}/login`, { body: { username: 'registrar', password: DEV_PASSWORD } });
    assert.equal(session.status, 200);
    const changed = await call(`${formation.gateway}/users/registrar/password`, {
      method: 'PUT',
      token: (session.body as { access_token: string }).access_token,
      body: { current_password: DEV_PASSWORD, new_password: 'not the load test password' },
    });
    assert.equal(changed.status, 204, JSON.stringify(changed.body));

    const run = await (await loadTest('--phases', 'reads,logins,writes', '--duration', '2')).finished;
    assert.equal(run.code, 2, run.output);
    assert.deepEqual(run.report.phases.map((phase) => phase.name), [READS, LOGINS]);
    for (const phase of run.report.phases) assert.ok(phase.requestsPerSecond > 0, `${phase.name} measured`);
    assert.equal(run.report.failures.length, 1, run.output);
    assert.equal(run.report.failures[0].phase, 'writes');
    assert.match(run.report.failures[0].error, /^login of registrar failed: 401 /);
    assert.match(run.output, /FAILED +writes: login of registrar failed: 401/);
    assert.match(run.svg, /FAILED writes: login of registrar failed: 401/);
    for (const name of [READS, LOGINS]) assert.ok(run.svg.includes(name), `the SVG shows ${name}`);
  });
});

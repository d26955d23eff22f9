// Load test of a running formation (npm start), with autocannon, through the HAProxy gateway.
// Phases: catalogue reads (and how they spread over the instances), the same reads straight to the
// instances (the gateway's cost), logins (against the machine's PBKDF2 limit), and a write mix of
// enrollments, drops and waitlist exits (then the enrollment rules are checked in the database).
// Prints a report with targets met / not met, and writes JSON and an SVG under var/loadtest/, also
// when a phase fails or the run is stopped: then with the phases that ran, and the failure named.
// Usage: bin/loadtest.sh --help
import { pbkdf2 } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, constants } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import { config, ROOT } from '../lib/config.ts';
import { Database } from '../lib/db.ts';
import { DEV_PASSWORD, STUDENTS } from '../lib/roster.ts';
import { checkEnrollmentRules } from '../lib/rules.ts';
import { options as commandOptions } from './cli.ts';
import { loadtestSvg } from './loadtest-svg.ts';

const options = commandOptions(
  {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    phases: { type: 'string', default: 'reads,direct,logins,writes' },
    log: { type: 'string', default: path.join(ROOT, 'var/formation.log') },
    hosts: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(ROOT, 'var/loadtest') },
  },
  `usage: bin/loadtest.sh [--duration SECONDS] [--connections N] [--phases LIST] [--log FILES] [--hosts]

Load-tests the formation that \`npm start\` runs (BASE_PORT=${config.gateway.port - 500}), through its gateway.
  --duration     seconds per phase (default 10; the whole run takes about 5 x that)
  --connections  concurrent connections for reads and writes (default 32; logins use 2 x cores)
  --phases       any of reads,direct,logins,writes (default all; they run in that order)
  --log          Foreman's log, which npm start writes (default var/formation.log): per-instance
                 and per-replica counts are taken from the instances' own lines in it; a comma
                 list of logs counts each one's instances apart, named after the log's directory
  --hosts        the formation of bin/hosts.sh instead: the hosts' logs under HOSTS_DIR (default
                 var/hosts), and no "direct" phase (the instances are inside the hosts)
  --out          where the JSON record and the SVG go (default var/loadtest)
Writes <out>/<time>.json and .svg, also when a phase fails or the run is stopped (SIGINT, SIGTERM).
The write phase makes its sections in a class of its own, LOAD TEST, and removes them when it ends or
is stopped (first also those an earlier run could not remove): run one load test at a time.
Exits 0 if every target is met, 1 if one is missed, 2 if a phase failed, 128 + the signal's number
if stopped.`,
);
const seconds = Number(options.duration);
const connections = Number(options.connections);
const hostsDir = path.resolve(ROOT, process.env.HOSTS_DIR || 'var/hosts');
const phases = new Set(options.phases.split(',').filter((phase) => !(options.hosts && phase === 'direct')));
const logs = options.hosts ? ['h1', 'h2', 'h3'].map((host) => path.join(hostsDir, host, 'formation.log')) : options.log.split(',');
const gateway = `http://127.0.0.1:${config.gateway.port}`;
const instances = config.gateway.enrollment.map((address) => `http://${address}`);
const stamp = new Date().toISOString().replace(/[:.]/g, '-');

// The first SIGINT or SIGTERM stops the phase that runs (the write phase still removes its
// sections) and the report of what was measured is written. Later ones are ignored: `npm run`
// forwards the terminal's SIGINT, so one Ctrl-C arrives twice.
const interruption = new AbortController();
const stopped = interruption.signal;
let stoppedBy: NodeJS.Signals | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    stoppedBy ??= signal;
    interruption.abort(new Error(`interrupted by ${signal}`));
  });
}

interface Reply {
  status: number;
  body: any;
}

async function api(method: string, route: string, { body, token }: { body?: unknown; token?: string } = {}): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const reply = await fetch(`${gateway}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: reply.status, body: await reply.json().catch(() => undefined) };
}

// The body of a reply with one of the statuses wanted; any other fails the phase, saying why.
function bodyOf(reply: Reply, wanted: number[], what: string): any {
  if (!wanted.includes(reply.status)) throw new Error(`${what}: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body;
}

async function login(username: string): Promise<string> {
  const reply = await api('POST', '/login', { body: { username, password: DEV_PASSWORD } });
  return bodyOf(reply, [200], `login of ${username} failed`).access_token;
}

// Foreman's logs from here on: the instances' and the users service's own lines. With several logs
// (one per host), each line's process is named after its log's directory: "h2/enrollment.1".
async function logFrom(): Promise<() => Promise<string[]>> {
  const files = logs.filter((log) => existsSync(log));
  const starts = await Promise.all(files.map(async (log) => (await stat(log)).size));
  const linesOf = async (log: string, start: number) => {
    const file = await open(log, 'r');
    try {
      const buffer = Buffer.alloc(Math.max(0, (await file.stat()).size - start)); // 0 if npm start began a new log
      await file.read(buffer, 0, buffer.length, start);
      const lines = buffer.toString().split('\n');
      return files.length > 1 ? lines.map((line) => line.replace(/^(\S+ )/, `$1${path.basename(path.dirname(log))}/`)) : lines;
    } finally {
      await file.close();
    }
  };
  return async () => (await Promise.all(files.map((log, index) => linesOf(log, starts[index])))).flat();
}

function countBy(lines: string[], pattern: RegExp): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of lines) {
    const key = pattern.exec(line)?.slice(1).join('');
    if (key) counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

interface Phase {
  name: string;
  requestsPerSecond: number;
  latency: { p50: number; p97_5: number; p99: number; max: number };
  requests: number;
  errors: number;
  statuses: Record<string, number>;
  unexpected: number;
  spread?: Record<string, number>;
}

// One autocannon run, with a progress line a second so that a long run never looks hung. A run cut
// short by a signal is no measurement: it throws instead.
async function run(name: string, settings: autocannon.Options, expected: (status: number) => boolean): Promise<Phase> {
  stopped.throwIfAborted();
  process.stdout.write(`\n${name}: ${settings.connections} connections for ${settings.duration} s\n`);
  let second = 0;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(settings, (error, done) => (error ? reject(error) : resolve(done)));
    stopped.addEventListener('abort', () => instance.stop(), { once: true });
    let answered = 0;
    instance.on('response', () => answered++);
    instance.on('tick', () => {
      process.stdout.write(`\r  ${++second}/${settings.duration} s, ${answered} answers this second   `);
      answered = 0;
    });
  });
  process.stdout.write('\n');
  stopped.throwIfAborted();
  const statuses: Record<string, number> = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, stats?.count ?? 0]));
  const unexpected = Object.entries(statuses).reduce((sum, [code, count]) => sum + (expected(Number(code)) ? 0 : count), 0);
  return {
    name,
    requestsPerSecond: result.requests.average,
    latency: { p50: result.latency.p50, p97_5: result.latency.p97_5, p99: result.latency.p99, max: result.latency.max },
    requests: result.requests.total,
    errors: result.errors + result.timeouts,
    statuses,
    unexpected,
  };
}

// A run whose spread (over instances or replicas) is counted from the lines of Foreman's log that
// `pattern` picks, named by what its groups capture.
async function runAndCount(name: string, settings: autocannon.Options, pattern: RegExp): Promise<Phase> {
  const lines = await logFrom();
  const phase = await run(name, settings, ok);
  await sleep(500); // the last answers' lines reach the log a moment after the answers
  phase.spread = countBy(await lines(), pattern);
  return phase;
}

const ok = (status: number) => status >= 200 && status < 300;

// PBKDF2 alone, on every core, at the configured iterations: what logins/s could be at best.
async function pbkdf2Limit(ms = 3000): Promise<number> {
  const derive = promisify(pbkdf2);
  const started = performance.now();
  let hashes = 0;
  await Promise.all(
    Array.from({ length: availableParallelism() }, async () => {
      while (performance.now() - started < ms && !stopped.aborted) {
        await derive('password', 'salt', config.users.pbkdf2Iterations, 32, 'sha256');
        hashes++;
      }
    }),
  );
  return hashes / ((performance.now() - started) / 1000);
}

interface Failure {
  phase: string;
  error: string;
}

const report: { phases: Phase[]; targets: { what: string; figure: string; met: boolean }[]; failures: Failure[]; [key: string]: unknown } = {
  started: new Date().toISOString(),
  node: process.version,
  cores: availableParallelism(),
  seconds,
  connections,
  pbkdf2Iterations: config.users.pbkdf2Iterations,
  phases: [],
  targets: [],
  failures: [],
};
const target = (what: string, figure: string, met: boolean) => report.targets.push({ what, figure, met });
// fetch's own message is only "fetch failed": the why (e.g. ECONNREFUSED) is its cause.
const failed = (phase: string, error: unknown) =>
  report.failures.push({ phase, error: error instanceof Error ? error.message + (error.cause instanceof Error ? ` (${error.cause.message})` : '') : String(error) });
const evenShareDeviation = (spread: Record<string, number>) => {
  const total = Object.values(spread).reduce((a, b) => a + b, 0);
  const even = total / Object.keys(spread).length;
  return Math.max(...Object.values(spread).map((count) => Math.abs(count - even) / total)) * 100;
};

// The token of both read phases, asked for once.
let reader: Promise<string> | undefined;
const readSettings = async () => ({ headers: { authorization: `Bearer ${await (reader ??= login('student001'))}` }, connections, duration: seconds });

async function reads(): Promise<void> {
  const phase = await runAndCount('reads through the gateway: GET /classes', { url: `${gateway}/classes`, ...(await readSettings()) }, /^\S+ (\S*enrollment\.\d+)\s+\| GET \/classes 200 /);
  report.phases.push(phase);
  const deviation = evenShareDeviation(phase.spread!);
  target('reads: 0 errors, 0 non-2xx', `${phase.errors} errors, ${phase.unexpected} non-2xx`, phase.errors + phase.unexpected === 0);
  if (Object.keys(phase.spread!).length) {
    target('reads: every instance within 1% of an even share', `${JSON.stringify(phase.spread)}, worst ${deviation.toFixed(2)}% off`, deviation <= 1 && Object.keys(phase.spread!).length === 3);
  }
}

async function direct(): Promise<void> {
  const read = await readSettings();
  // autocannon spreads its connections evenly over several URLs (its types know only one).
  const urls = instances.map((instance) => `${instance}/classes`);
  const three = await run('reads straight to the three instances (no gateway)', { url: urls as unknown as string, ...read }, ok);
  const one = await run('reads straight to one instance', { url: urls[0], ...read }, ok);
  report.phases.push(three, one);
  target('direct reads: 0 errors, 0 non-2xx', `${three.errors + one.errors} errors, ${three.unexpected + one.unexpected} non-2xx`, three.errors + one.errors + three.unexpected + one.unexpected === 0);
  const viaGateway = report.phases.find((phase) => phase.name.startsWith('reads through'));
  if (viaGateway) {
    const ratio = viaGateway.requestsPerSecond / three.requestsPerSecond;
    report.gatewayCost = {
      gatewayOverDirectThree: ratio,
      gatewayOverDirectOne: viaGateway.requestsPerSecond / one.requestsPerSecond,
      p50AddedMs: viaGateway.latency.p50 - three.latency.p50,
    };
    target('the gateway path >= 0.9 x the three instances hit directly', `${ratio.toFixed(2)} x`, ratio >= 0.9);
  }
}

async function logins(): Promise<void> {
  process.stdout.write(`\nmeasuring the PBKDF2 limit (${config.users.pbkdf2Iterations} iterations, ${availableParallelism()} cores, nothing else)\n`);
  const limit = await pbkdf2Limit();
  const phase = await runAndCount(
    'logins through the gateway: POST /login',
    {
      url: `${gateway}/login`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'student002', password: DEV_PASSWORD }),
      connections: 2 * availableParallelism(),
      duration: seconds,
    },
    /^\S+ (\S*\/)?users\.\d+\s+\| POST \/login 200 .* replica=(\S+)$/,
  );
  report.phases.push(phase);
  report.pbkdf2LimitPerSecond = limit;
  target('logins: 0 errors, 0 non-2xx', `${phase.errors} errors, ${phase.unexpected} non-2xx`, phase.errors + phase.unexpected === 0);
  target('logins >= 95% of the PBKDF2 limit', `${phase.requestsPerSecond.toFixed(1)}/s of ${limit.toFixed(1)}/s = ${((100 * phase.requestsPerSecond) / limit).toFixed(0)}%`, phase.requestsPerSecond >= 0.95 * limit);
}

const LOAD_TEST = { department: 'LOAD', course_code: 'TEST', title: 'Load test sections' };

// The load test's own class: made by the first run, found again by the next ones.
async function loadTestClass(registrar: string): Promise<number> {
  const made = await api('POST', '/classes', { body: LOAD_TEST, token: registrar });
  if (made.status !== 409) return bodyOf(made, [201], 'could not make the LOAD TEST class').id;
  const { classes } = bodyOf(await api('GET', '/classes', { token: registrar }), [200], 'could not list the classes');
  return classes.find((c: typeof LOAD_TEST) => c.department === LOAD_TEST.department && c.course_code === LOAD_TEST.course_code).id;
}

// Removes every section the class offers: before the write mix, those that an earlier run could not
// remove (it was killed, or the formation went down under it); after it, those this run made.
async function removeSections(classId: number, registrar: string): Promise<void> {
  const { sections } = bodyOf(await api('GET', `/classes/${classId}`, { token: registrar }), [200], 'could not read the LOAD TEST class');
  for (const { id } of sections) {
    bodyOf(await api('DELETE', `/sections/${id}`, { token: registrar }), [204, 404], `could not remove section ${id}`);
  }
}

// Small capacities, so that seats fill, waitlists form and overflow, and drops promote. A signal
// stops it between two sections, never during one, so that the removal afterwards sees them all.
async function makeSections(classId: number, registrar: string): Promise<number[]> {
  const sections: number[] = [];
  for (let number = 1; number <= 12; number++) {
    stopped.throwIfAborted();
    const made = await api('POST', '/sections', { body: { class_id: classId, section_number: number, capacity: 2 + (number % 4), instructor: 'prof.chen' }, token: registrar });
    sections.push(bodyOf(made, [201], 'could not make a section').id);
  }
  return sections;
}

interface Step {
  student: number;
  section: number;
  op: 'enroll' | 'drop' | 'leave';
}

// What each student holds, as the answers said: half the requests give back a seat or a waitlist
// place the student holds (so that drops promote), the rest ask for a seat in a random section.
function writeMix(sections: number[], tokens: string[]): autocannon.Options {
  const pick = <T>(list: T[]) => list[Math.floor(Math.random() * list.length)];
  const holds = tokens.map(() => new Map<number, 'enrolled' | 'waiting'>());
  const request = (step: Step, auth: string) => {
    const headers = { authorization: `Bearer ${auth}`, 'content-type': 'application/json' };
    if (step.op === 'enroll') return { method: 'POST' as const, path: '/me/enrollments', headers, body: JSON.stringify({ section_id: step.section }) };
    return { method: 'DELETE' as const, path: `/me/${step.op === 'drop' ? 'enrollments' : 'waitlist'}/${step.section}`, headers, body: undefined };
  };
  return {
    url: gateway,
    connections,
    duration: seconds,
    requests: [
      {
        setupRequest: (raw, context) => {
          const student = Math.floor(Math.random() * tokens.length);
          const held = [...holds[student]];
          const [section, state] = held.length && Math.random() < 0.5 ? pick(held) : [pick(sections), undefined];
          const step: Step = { student, section, op: state === 'enrolled' ? 'drop' : state === 'waiting' ? 'leave' : 'enroll' };
          (context as { step?: Step }).step = step;
          return { ...raw, ...request(step, tokens[student]) };
        },
        onResponse: (status, _body, context) => {
          const { student, section, op } = (context as { step: Step }).step;
          if (op === 'enroll' && status === 201) holds[student].set(section, 'enrolled');
          else if (op === 'enroll' && status === 202) holds[student].set(section, 'waiting');
          else if (op !== 'enroll') holds[student].delete(section); // 204, or 404: it was promoted or gone
        },
      },
    ],
  };
}

async function writes(): Promise<void> {
  const registrar = await login('registrar');
  const students = STUDENTS.slice(0, 60);
  process.stdout.write(`\nwrite mix: logging in ${students.length} students, making sections\n`);
  const tokens = await Promise.all(students.map(login));
  const classId = await loadTestClass(registrar);
  await removeSections(classId, registrar);
  try {
    const sections = await makeSections(classId, registrar);
    // 404: not enrolled / not waiting there; 409: a rule said no. Both are the rules at work.
    const phase = await run('write mix through the gateway: enroll / drop / leave waitlist', writeMix(sections, tokens), (status) => ok(status) || status === 404 || status === 409);
    report.phases.push(phase);
    target('writes: 0 errors, 0 unexpected statuses (2xx, 404, 409 expected)', `${phase.errors} errors, ${phase.unexpected} unexpected`, phase.errors + phase.unexpected === 0);
    target('writes >= 500 requests/s', `${phase.requestsPerSecond.toFixed(0)}/s`, phase.requestsPerSecond >= 500);
  } finally {
    await removeSections(classId, registrar).catch((error) => failed('writes (removing the LOAD TEST sections)', error));
  }
  const db = await Database.open(config.enrollment.db, { readonly: true });
  const broken = await checkEnrollmentRules(db);
  await db.close();
  report.brokenRules = broken;
  target('writes: every enrollment rule holds in the database afterwards', broken.length ? broken.join('; ') : '0 broken', broken.length === 0);
}

const PHASES: Record<string, () => Promise<void>> = { reads, direct, logins, writes };
const unknown = [...phases].filter((name) => !(name in PHASES));
if (unknown.length) throw new Error(`--phases: no phase ${unknown.join(', ')} (there are ${Object.keys(PHASES).join(', ')})`);
for (const [name, phase] of Object.entries(PHASES)) {
  if (phases.has(name) && !stopped.aborted) await phase().catch((error) => failed(name, error));
}

// ---- the report ----
report.stoppedBy = stoppedBy;
const ms = (value: number) => `${value.toFixed(1)} ms`;
console.log('\n| phase | requests/s | p50 | p97.5 | p99 | errors | statuses | spread |');
console.log('|---|---|---|---|---|---|---|---|');
for (const phase of report.phases) {
  console.log(
    `| ${phase.name} | ${phase.requestsPerSecond.toFixed(0)} | ${ms(phase.latency.p50)} | ${ms(phase.latency.p97_5)} | ${ms(phase.latency.p99)} | ${phase.errors} | ${JSON.stringify(phase.statuses)} | ${phase.spread ? JSON.stringify(phase.spread) : ''} |`,
  );
}
if (report.gatewayCost) {
  const cost = report.gatewayCost as { gatewayOverDirectThree: number; gatewayOverDirectOne: number; p50AddedMs: number };
  console.log(`\ngateway / direct to three: ${cost.gatewayOverDirectThree.toFixed(2)} x; gateway / direct to one: ${cost.gatewayOverDirectOne.toFixed(2)} x; p50 added by the gateway: ${ms(cost.p50AddedMs)}`);
}
console.log('\ntargets:');
for (const { what, figure, met } of report.targets) console.log(`  ${met ? 'met    ' : 'NOT MET'}  ${what}: ${figure}`);
for (const { phase, error } of report.failures) console.log(`  FAILED   ${phase}: ${error}`);
const dir = options.out;
await mkdir(dir, { recursive: true });
await writeFile(path.join(dir, `${stamp}.json`), JSON.stringify(report, null, 2));
await writeFile(path.join(dir, `${stamp}.svg`), loadtestSvg(report.phases, report.failures));
console.log(`\nwrote ${path.join(dir, `${stamp}.json`)} and .svg (${process.version}, ${availableParallelism()} cores)`);
if (stoppedBy) process.exitCode = 128 + constants.signals[stoppedBy];
else process.exitCode = report.failures.length ? 2 : report.targets.every((t) => t.met) ? 0 : 1;

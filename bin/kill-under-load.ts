// Kills processes of a running formation one at a time, the way a crash does (SIGKILL), while load
// runs through the gateway, and tells what the clients saw: per kind of request, how many failed,
// the slowest answer and the longest outage; then checks that every process came back and that
// every account registered during the run logs in. Usage: bin/kill-under-load.sh --help
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { formationPorts } from '../lib/config.ts';
import { DEV_PASSWORD, STUDENTS } from '../lib/roster.ts';
import { options as commandOptions } from './cli.ts';

export const TARGETS = ['secondary1', 'secondary2', 'primary', 'users.1', 'users.2', 'enrollment.1', 'enrollment.2', 'enrollment.3'] as const;
export type Target = (typeof TARGETS)[number];
const GROUPS: Record<string, Target[]> = {
  secondaries: ['secondary1', 'secondary2'],
  users: ['users.1', 'users.2'],
  enrollment: ['enrollment.1', 'enrollment.2', 'enrollment.3'],
};

// The port each target listens on: how its process is found, and how its return is seen.
function portOf(target: Target, base: number): number {
  const ports = formationPorts(base);
  const [kind, instance] = target.split('.');
  if (kind === 'users' || kind === 'enrollment') return ports[kind][Number(instance) - 1];
  return ports.litefs[kind as keyof typeof ports.litefs];
}

// The pid listening on a loopback port, from `ss` (iproute2), or undefined.
export function listener(port: number): number | undefined {
  const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  const pid = /pid=(\d+)/.exec(out)?.[1];
  return pid ? Number(pid) : undefined;
}

interface Tally {
  requests: number;
  failures: number; // answers the clients should never see (and connection errors)
  refused: number; // 503 with Retry-After: the write was not done, and the client was told when to retry
  refusedWithoutRetryAfter: number;
  replayed: number; // answers given again for an Idempotency-Key (the first one's instance died)
  slowestMs: number;
  longestOutageMs: number;
  examples: string[]; // the first few failures, as the client saw them
  outageSince?: number;
}

export interface KillRecord {
  target: Target;
  pid: number;
  at: number; // ms since the load started
  backAfterMs?: number; // until a new process listened on the target's port
  writesBackAfterMs?: number; // primary only: from its return until every users instance takes writes
}

export interface Report {
  seconds: number;
  kinds: Record<string, Omit<Tally, 'outageSince'>>;
  kills: KillRecord[];
  notBack: Target[];
  registered: number;
  registeredButCannotLogIn: string[];
}

export interface Options {
  basePort: number;
  kill: Target[]; // in this order
  betweenMs?: number; // after a target is back, before the next kill
  registerEveryMs?: number;
  log?: (line: string) => void;
}

// Writes carry an Idempotency-Key, as a careful client's do: the gateway may then send one again
// to another instance when the one handling it dies (lib/idempotency.ts).
async function send(url: string, method: string, body?: unknown, token?: string): Promise<{ status: number; retryAfter: string | null; replayed: boolean; text: string }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  if (method !== 'GET') headers['idempotency-key'] = randomUUID();
  const reply = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  return { status: reply.status, retryAfter: reply.headers.get('retry-after'), replayed: reply.headers.has('idempotent-replayed'), text: await reply.text() };
}

export async function killUnderLoad(options: Options): Promise<Report> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const ports = formationPorts(options.basePort);
  const gateway = `http://127.0.0.1:${ports.gateway}`;
  const started = performance.now();
  const since = () => Math.round(performance.now() - started);
  const tallies: Record<string, Tally> = {};
  const tally = (kind: string) => (tallies[kind] ??= { requests: 0, failures: 0, refused: 0, refusedWithoutRetryAfter: 0, replayed: 0, slowestMs: 0, longestOutageMs: 0, examples: [] });

  // One request of a kind: `ok` lists the statuses that are a success for it; a 503 is a refusal.
  async function measure(kind: string, ok: number[], request: () => ReturnType<typeof send>) {
    const t = tally(kind);
    const sent = performance.now();
    const reply = await request().catch((error: Error) => ({ status: 0, retryAfter: null, replayed: false, text: String(error.cause ?? error.message) }));
    const now = performance.now();
    t.requests++;
    if (reply.replayed) t.replayed++;
    t.slowestMs = Math.max(t.slowestMs, Math.round(now - sent));
    if (ok.includes(reply.status)) {
      if (t.outageSince !== undefined) t.longestOutageMs = Math.max(t.longestOutageMs, Math.round(now - t.outageSince));
      t.outageSince = undefined;
      return reply;
    }
    t.outageSince ??= sent;
    if (reply.status === 503) {
      t.refused++;
      if (!reply.retryAfter) t.refusedWithoutRetryAfter++;
    } else {
      t.failures++;
      if (t.examples.length < 5) t.examples.push(`${since()} ms: ${reply.status} ${reply.text.slice(0, 200)}`);
    }
    return reply;
  }

  const login = (username: string, password = DEV_PASSWORD) => send(`${gateway}/login`, 'POST', { username, password });
  const first = await login(STUDENTS[0]);
  if (first.status !== 200) throw new Error(`the formation does not log in ${STUDENTS[0]}: ${first.status} ${first.text}`);
  const readToken = JSON.parse(first.text).access_token as string;
  const catalogue = JSON.parse((await send(`${gateway}/classes`, 'GET', undefined, readToken)).text) as { classes: { sections: { id: number; seats_left: number }[] }[] };
  const roomy = catalogue.classes.flatMap((c) => c.sections).filter((section) => section.seats_left >= 5);

  let running = true;
  const loops: Promise<void>[] = [];
  const loop = (body: (turn: number) => Promise<void>) =>
    loops.push(
      (async () => {
        for (let turn = 0; running; turn++) await body(turn);
      })(),
    );
  // Logins of seeded students, catalogue reads, enroll-then-drop of two students.
  for (let worker = 0; worker < 3; worker++) loop((turn) => measure('login', [200], () => login(STUDENTS[1 + ((worker * 37 + turn) % 60)])).then(() => {}));
  for (let worker = 0; worker < 3; worker++) loop(() => measure('read', [200], () => send(`${gateway}/classes`, 'GET', undefined, readToken)).then(() => {}));
  for (let worker = 0; worker < 2 && worker < roomy.length; worker++) {
    const student = STUDENTS[100 + worker];
    const token = JSON.parse((await login(student)).text).access_token as string;
    const section = roomy[worker].id;
    loop(async () => {
      await measure('enroll', [201, 202, 409], () => send(`${gateway}/me/enrollments`, 'POST', { section_id: section }, token));
      await measure('drop', [204, 404], () => send(`${gateway}/me/enrollments/${section}`, 'DELETE', undefined, token));
    });
  }
  // A registration every so often, and at once a login of the new account.
  const registered: string[] = [];
  const run = `k${Date.now().toString(36)}`;
  loop(async (turn) => {
    const username = `${run}-${turn}`;
    const reply = await measure('register', [201], () => send(`${gateway}/users`, 'POST', { username, password: 'kill password', roles: ['Student'] }));
    if (reply.status === 201) {
      registered.push(username);
      await measure('login just registered', [200], () => login(username, 'kill password'));
    }
    await sleep(options.registerEveryMs ?? 500);
  });

  const kills: KillRecord[] = [];
  const notBack: Target[] = [];
  await sleep(1000);
  for (const target of options.kill) {
    const port = portOf(target, options.basePort);
    const pid = listener(port);
    if (!pid) {
      log(`kill-under-load: nothing listens for ${target} on port ${port}`);
      notBack.push(target);
      continue;
    }
    process.kill(pid, 'SIGKILL');
    const record: KillRecord = { target, pid, at: since() };
    kills.push(record);
    log(`kill-under-load: ${(record.at / 1000).toFixed(1)} s: SIGKILLed ${target} (pid ${pid})`);
    const killedAt = performance.now();
    const back = await until(30_000, () => {
      const now = listener(port);
      return now !== undefined && now !== pid;
    });
    if (!back) {
      notBack.push(target);
      log(`kill-under-load: ${target} is not back after 30 s`);
      continue;
    }
    record.backAfterMs = Math.round(performance.now() - killedAt);
    if (target === 'primary') {
      const returned = performance.now();
      const writable = await until(10_000, async () => (await Promise.all(ports.users.map((port) => takesWrites(port)))).every(Boolean));
      if (writable) record.writesBackAfterMs = Math.round(performance.now() - returned);
    }
    log(`kill-under-load: ${target} back after ${record.backAfterMs} ms${record.writesBackAfterMs === undefined ? '' : `, writes taken again ${record.writesBackAfterMs} ms after that`}`);
    await sleep(options.betweenMs ?? 3000);
  }
  running = false;
  await Promise.all(loops);

  // Every account registered during the run logs in, now that everything is back.
  const registeredButCannotLogIn: string[] = [];
  for (const username of registered) {
    if ((await login(username, 'kill password')).status !== 200) registeredButCannotLogIn.push(username);
  }
  const kinds = Object.fromEntries(Object.entries(tallies).map(([kind, { outageSince, ...t }]) => [kind, t]));
  return { seconds: Math.round(since() / 1000), kinds, kills, notBack, registered: registered.length, registeredButCannotLogIn };
}

async function takesWrites(port: number): Promise<boolean> {
  try {
    const reply = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
    return reply.ok && ((await reply.json()) as { writes?: boolean }).writes === true;
  } catch {
    return false;
  }
}

async function until(timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

export function printReport(report: Report, out: (line: string) => void = console.log): void {
  out(`\n${report.seconds} s of load through the gateway, ${report.kills.length} kills`);
  out('kind                   requests  failed  503+Retry-After  replayed  slowest ms  longest outage ms');
  for (const [kind, t] of Object.entries(report.kinds)) {
    const columns = [[t.requests, 8], [t.failures, 6], [t.refused, 15], [t.replayed, 8], [t.slowestMs, 10], [t.longestOutageMs, 17]] as const;
    out(`${kind.padEnd(22)} ${columns.map(([value, width]) => String(value).padStart(width)).join('  ')}`);
    for (const example of t.examples) out(`    ${example}`);
  }
  for (const kill of report.kills) {
    out(`  ${kill.target.padEnd(13)} killed at ${(kill.at / 1000).toFixed(1)} s, back after ${kill.backAfterMs ?? '-'} ms${kill.writesBackAfterMs === undefined ? '' : `, writes again ${kill.writesBackAfterMs} ms later`}`);
  }
  out(`processes not back: ${report.notBack.join(', ') || 'none'}`);
  out(`accounts registered during the run: ${report.registered}, of which cannot log in: ${report.registeredButCannotLogIn.join(', ') || 'none'}`);
}

// Logins and reads must never fail; nor may a refusal come without Retry-After.
export function problems(report: Report): string[] {
  const found: string[] = [];
  for (const kind of ['login', 'read', 'login just registered']) {
    const t = report.kinds[kind];
    if (t && t.failures + t.refused) found.push(`${t.failures + t.refused} ${kind} requests failed`);
  }
  for (const [kind, t] of Object.entries(report.kinds)) {
    if (t.refusedWithoutRetryAfter) found.push(`${t.refusedWithoutRetryAfter} ${kind} 503s without Retry-After`);
  }
  if (report.notBack.length) found.push(`not back: ${report.notBack.join(', ')}`);
  if (report.registeredButCannotLogIn.length) found.push(`registered but cannot log in: ${report.registeredButCannotLogIn.join(', ')}`);
  return found;
}

if (import.meta.main) {
  const usage = `usage: bin/kill-under-load.sh [--kill LIST] [--times N] [--between SECONDS]

SIGKILLs processes of the running formation (npm start, BASE_PORT=${process.env.BASE_PORT ?? 5000}) in turn, under
load through its gateway (logins, catalogue reads, enroll/drop, a registration every 0.5 s followed by
a login of the new account), waiting after each kill until the process is back. Then prints, per kind
of request, the requests, failures, 503s with Retry-After, the slowest and the longest outage, checks
that every process came back and that every account registered meanwhile logs in.
  --kill     a list of ${TARGETS.join(', ')},
             or the groups secondaries, users, enrollment (default secondaries,primary,users,enrollment)
  --times    kills of each (default 2)
  --between  seconds after a process is back before the next kill (default 3)
Exits 1 if a login or read failed, a refusal had no Retry-After, a process did not come back or a
registered account cannot log in.`;
  const values = commandOptions(
    {
      kill: { type: 'string', default: 'secondaries,primary,users,enrollment' },
      times: { type: 'string', default: '2' },
      between: { type: 'string', default: '3' },
    },
    usage,
  );
  const named = values.kill.split(',').flatMap((name) => GROUPS[name] ?? [name]);
  const unknown = named.filter((name) => !TARGETS.includes(name as Target));
  const times = Number(values.times);
  if (unknown.length || !Number.isInteger(times) || times < 1) {
    console.error(unknown.length ? `unknown process(es): ${unknown.join(', ')}\n\n${usage}` : usage);
    process.exit(2);
  }
  const kill = (named as Target[]).flatMap((target) => Array<Target>(times).fill(target));
  const report = await killUnderLoad({ basePort: Number(process.env.BASE_PORT ?? 5000), kill, betweenMs: Number(values.between) * 1000 });
  printReport(report);
  const found = problems(report);
  for (const problem of found) console.log(`PROBLEM: ${problem}`);
  process.exit(found.length ? 1 : 0);
}

// Kills processes of a running formation one at a time, the way a crash does (SIGKILL), while load
// runs through the gateway, and tells what the clients saw: per kind of request, how many failed,
// the slowest answer and the longest outage; then checks that every process came back and that
// every account registered during the run logs in. Usage: bin/kill-under-load.sh --help
import { execFileSync } from 'node:child_process';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { formationPorts } from '../lib/config.ts';
import { cannotLogIn, printTallies, startLoad, tallyProblems, type Tallies } from '../harness/load.ts';
import { options as commandOptions } from './cli.ts';

export const TARGETS = ['secondary1', 'secondary2', 'primary', 'users.1', 'users.2', 'enrollment.1', 'enrollment.2', 'enrollment.3'] as const;
// With bin/hosts.sh: a process of one host.
export const HOST_TARGETS = ['h1', 'h2', 'h3'].flatMap((host) => ['litefs', 'users', 'enrollment'].map((kind) => `${host}.${kind}`));
export type Target = (typeof TARGETS)[number] | string;
const GROUPS: Record<string, Target[]> = {
  secondaries: ['secondary1', 'secondary2'],
  users: ['users.1', 'users.2'],
  enrollment: ['enrollment.1', 'enrollment.2', 'enrollment.3'],
};

// Where each target listens (inside its host's network namespace, with bin/hosts.sh): how its
// process is found, and how its return is seen.
function placeOf(target: Target, base: number, hostsPrefix?: string): { port: number; netns?: string } {
  const ports = formationPorts(base);
  const [kind, instance] = target.split('.');
  if (hostsPrefix) return { port: { litefs: ports.litefs.primary, users: ports.users[0], enrollment: ports.enrollment[0] }[instance]!, netns: `${hostsPrefix}-${kind}` };
  if (kind === 'users' || kind === 'enrollment') return { port: ports[kind][Number(instance) - 1] };
  return { port: ports.litefs[kind as keyof typeof ports.litefs] };
}

// The pid listening on a port (in a network namespace), from `ss` (iproute2), or undefined.
export function listener(port: number, netns?: string): number | undefined {
  const ss = ['ss', '-ltnpH', `sport = :${port}`];
  const out = netns ? execFileSync('nsenter', [`--net=/run/netns/${netns}`, ...ss], { encoding: 'utf8' }) : execFileSync(ss[0], ss.slice(1), { encoding: 'utf8' });
  const pid = /pid=(\d+)/.exec(out)?.[1];
  return pid ? Number(pid) : undefined;
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
  kinds: Tallies;
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
  hostsPrefix?: string; // the formation of bin/hosts.sh (HOSTS_PREFIX), whose targets are HOST_TARGETS
  log?: (line: string) => void;
}

export async function killUnderLoad(options: Options): Promise<Report> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const ports = formationPorts(options.basePort);
  const gateway = `http://127.0.0.1:${ports.gateway}`;
  const load = await startLoad(gateway, { registerEveryMs: options.registerEveryMs });
  const since = load.since;
  const kills: KillRecord[] = [];
  const notBack: Target[] = [];
  await sleep(1000);
  for (const target of options.kill) {
    const { port, netns } = placeOf(target, options.basePort, options.hostsPrefix);
    const pid = listener(port, netns);
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
      const now = listener(port, netns);
      return now !== undefined && now !== pid;
    });
    if (!back) {
      notBack.push(target);
      log(`kill-under-load: ${target} is not back after 30 s`);
      continue;
    }
    record.backAfterMs = Math.round(performance.now() - killedAt);
    if (target === 'primary' && !options.hostsPrefix) {
      const returned = performance.now();
      const writable = await until(10_000, async () => (await Promise.all(ports.users.map((port) => takesWrites(port)))).every(Boolean));
      if (writable) record.writesBackAfterMs = Math.round(performance.now() - returned);
    }
    log(`kill-under-load: ${target} back after ${record.backAfterMs} ms${record.writesBackAfterMs === undefined ? '' : `, writes taken again ${record.writesBackAfterMs} ms after that`}`);
    await sleep(options.betweenMs ?? 3000);
  }
  await load.stop();
  const kinds = load.takeTallies();
  // Every account registered during the run logs in, now that everything is back.
  const registeredButCannotLogIn = await cannotLogIn(gateway, load.registered);
  return { seconds: Math.round(since() / 1000), kinds, kills, notBack, registered: load.registered.length, registeredButCannotLogIn };
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
  printTallies(report.kinds, out);
  for (const kill of report.kills) {
    out(`  ${kill.target.padEnd(13)} killed at ${(kill.at / 1000).toFixed(1)} s, back after ${kill.backAfterMs ?? '-'} ms${kill.writesBackAfterMs === undefined ? '' : `, writes again ${kill.writesBackAfterMs} ms later`}`);
  }
  out(`processes not back: ${report.notBack.join(', ') || 'none'}`);
  out(`accounts registered during the run: ${report.registered}, of which cannot log in: ${report.registeredButCannotLogIn.join(', ') || 'none'}`);
}

// Logins and reads must never fail; nor may a refusal come without Retry-After.
export function problems(report: Report): string[] {
  const found = tallyProblems(report.kinds);
  if (report.notBack.length) found.push(`not back: ${report.notBack.join(', ')}`);
  if (report.registeredButCannotLogIn.length) found.push(`registered but cannot log in: ${report.registeredButCannotLogIn.join(', ')}`);
  return found;
}

if (import.meta.main) {
  const usage = `usage: bin/kill-under-load.sh [--kill LIST] [--times N] [--between SECONDS] [--hosts]

SIGKILLs processes of the running formation (npm start, BASE_PORT=${process.env.BASE_PORT ?? 5000}) in turn, under
load through its gateway (logins, catalogue reads, enroll/drop, a registration every 0.5 s followed by
a login of the new account), waiting after each kill until the process is back. Then prints, per kind
of request, the requests, failures, 503s with Retry-After, the slowest and the longest outage, checks
that every process came back and that every account registered meanwhile logs in.
  --kill     a list of ${TARGETS.join(', ')},
             or the groups secondaries, users, enrollment (default secondaries,primary,users,enrollment)
  --hosts    the formation of bin/hosts.sh instead (HOSTS_PREFIX, default egw): --kill is then a list of
             HOST.KIND, HOST one of h1, h2, h3 and KIND one of litefs, users, enrollment (default all nine)
  --times    kills of each (default 2)
  --between  seconds after a process is back before the next kill (default 3)
Exits 1 if a login or read failed, a refusal had no Retry-After, a process did not come back or a
registered account cannot log in.`;
  const values = commandOptions(
    {
      kill: { type: 'string' },
      times: { type: 'string', default: '2' },
      between: { type: 'string', default: '3' },
      hosts: { type: 'boolean', default: false },
    },
    usage,
  );
  const named = values.kill === undefined && values.hosts ? HOST_TARGETS : (values.kill ?? 'secondaries,primary,users,enrollment').split(',').flatMap((name) => GROUPS[name] ?? [name]);
  const known: readonly string[] = values.hosts ? HOST_TARGETS : TARGETS;
  const unknown = named.filter((name) => !known.includes(name));
  const times = Number(values.times);
  if (unknown.length || !Number.isInteger(times) || times < 1) {
    console.error(unknown.length ? `unknown process(es): ${unknown.join(', ')}\n\n${usage}` : usage);
    process.exit(2);
  }
  const kill = (named as Target[]).flatMap((target) => Array<Target>(times).fill(target));
  const hostsPrefix = values.hosts ? process.env.HOSTS_PREFIX || 'egw' : undefined;
  const report = await killUnderLoad({ basePort: Number(process.env.BASE_PORT ?? 5000), kill, betweenMs: Number(values.between) * 1000, hostsPrefix });
  printReport(report);
  const found = problems(report);
  for (const problem of found) console.log(`PROBLEM: ${problem}`);
  process.exit(found.length ? 1 : 0);
}

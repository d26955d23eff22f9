// usage: bin/node bin/bench-backup.ts [SECONDS]   (prints figures; asserts nothing)
//
// What backing up the enrollment database costs, on a formation of its own (a seeded throw-away
// database, three enrollment instances on free ports, a throw-away key):
// - the write mix (students enrolling and dropping, 8 at a time, round robin over the instances,
//   straight, not through the gateway): requests/s without Litestream and with it, alternating
//   twice, each phase SECONDS long (default 10);
// - the replication delay to the backup: from a write's answer to its transaction's file in the
//   replica (Litestream's sync), p50 and p99 of 40 writes made one at a time;
// - the time to restore (`litestream restore`, and bin/verify-backup.ts: restore, integrity check,
//   row counts, rules) of a database of the seeded size, and of one 100 times larger.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from '../lib/config.ts';
import { Database } from '../lib/db.ts';
import { STUDENTS } from '../lib/roster.ts';
import { tool } from '../lib/backup-settings.ts';
import { call, makeTestKeys, quantile, startService, tempDir } from '../harness/support.ts';
import { waitFor } from '../harness/wait.ts';
import { commandLine, refuse } from './cli.ts';

const { operands } = commandLine(import.meta.filename, { max: 1 });
const seconds = Number(operands[0] ?? 10);
if (!(seconds > 0)) refuse(import.meta.filename, `SECONDS must be a positive number, got '${operands[0]}'`);

const dir = await tempDir('bench-backup');
const keys = await makeTestKeys(dir);
const backupEnv = (db: string, replica: string) => ({ ...process.env, ENROLLMENT_DB: db, ENROLLMENT_BACKUP_DIR: replica, LITESTREAM_SOCKET: `${db}-litestream.sock` });
const db = path.join(dir, 'enrollment.db');
const replica = path.join(dir, 'backups', 'enrollment'); // BACKUP_DIR/enrollment, as bin/verify-backup.ts reads it
const env = { ENROLLMENT_DB: db, JWKS_PUBLIC: keys.publicFile, JWKS_PRIVATE: keys.privateFile };
const seeded = spawnSync(process.execPath, ['bin/seed-enrollment.ts'], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' });
if (seeded.status !== 0) throw new Error(seeded.stderr);
const instances = await Promise.all([0, 1, 2].map(() => startService('enrollment.ts', env)));
let litestream: ChildProcess | undefined;

function startLitestream(): ChildProcess {
  return spawn(tool('litestream'), ['replicate', '-config', 'etc/litestream.yml'], { cwd: ROOT, env: backupEnv(db, replica), stdio: 'ignore' });
}

async function stopLitestream(): Promise<void> {
  if (!litestream) return;
  const exited = new Promise((resolve) => litestream!.once('exit', resolve));
  litestream.kill('SIGTERM');
  await exited;
  litestream = undefined;
}

// Students enroll in a section and drop it again, back to back, for `ms`: requests per second.
async function writeMix(ms: number): Promise<number> {
  const ids = await sectionsOf(db);
  let requests = 0;
  let next = 0;
  const end = Date.now() + ms;
  await Promise.all(
    STUDENTS.slice(100, 108).map(async (student, worker) => {
      const token = await keys.accessToken(student, ['Student']);
      for (let round = 0; Date.now() < end; round++) {
        const sectionId = ids[(worker * 5 + round) % ids.length];
        const url = instances[next++ % 3].url;
        await call(`${url}/me/enrollments`, { token, body: { section_id: sectionId } });
        await call(`${instances[next++ % 3].url}/me/enrollments/${sectionId}`, { method: 'DELETE', token });
        requests += 2;
      }
    }),
  );
  return requests / (ms / 1000);
}

async function sectionsOf(file: string): Promise<number[]> {
  const database = await Database.open(file, { readonly: true });
  try {
    return (await database.all<{ id: number }>('SELECT id FROM sections WHERE removed_at IS NULL')).map((row) => row.id);
  } finally {
    await database.close();
  }
}

const level0 = () => {
  try {
    return readdirSync(path.join(replica, 'ltx/0')).sort().at(-1);
  } catch {
    return undefined;
  }
};

// From a write's answer until a new level-0 file is in the replica, one write at a time.
async function replicationDelays(samples: number): Promise<number[]> {
  const token = await keys.accessToken(STUDENTS[110], ['Student']);
  const [sectionId] = await sectionsOf(db);
  const delays: number[] = [];
  for (let sample = 0; sample < samples; sample++) {
    const before = level0();
    await call(`${instances[0].url}/me/enrollments${sample % 2 ? `/${sectionId}` : ''}`, sample % 2 ? { method: 'DELETE', token } : { token, body: { section_id: sectionId } });
    const answered = performance.now();
    await waitFor('the write in the backup (is Litestream running?)', () => level0() !== before, 10_000, 5);
    delays.push(performance.now() - answered);
    await sleep(100 + Math.random() * 400);
  }
  return delays;
}

// Times `litestream restore` of the replica, and bin/verify-backup.ts (restore and every check).
function restoreTimes(file: string, from: string): { restoreMs: number; verifyMs: number } {
  const out = path.join(dir, `restored-${path.basename(path.dirname(file))}.db`);
  let started = performance.now();
  const restored = spawnSync(tool('litestream'), ['restore', '-o', out, `file://${from}`], { encoding: 'utf8' });
  if (restored.status !== 0) throw new Error(restored.stderr + restored.stdout);
  const restoreMs = performance.now() - started;
  started = performance.now();
  const verified = spawnSync(process.execPath, ['bin/verify-backup.ts', 'enrollment'], { cwd: ROOT, env: { ...process.env, ENROLLMENT_DB: file, BACKUP_DIR: path.dirname(from) }, encoding: 'utf8' });
  if (verified.status !== 0) throw new Error(verified.stderr);
  return { restoreMs, verifyMs: performance.now() - started };
}

// A copy of the database grown to `factor` times its size with filler rows, and its replica.
async function grown(factor: number): Promise<{ file: string; replica: string }> {
  const file = path.join(dir, 'big', 'enrollment.db');
  const bigReplica = path.join(dir, 'big', 'enrollment');
  spawnSync('mkdir', ['-p', path.dirname(file)]);
  const source = await Database.open(db, { readonly: true });
  await source.run('VACUUM INTO ?', [file]).finally(() => source.close());
  const big = await Database.open(file);
  const target = statSync(db).size * factor;
  await big.exec('CREATE TABLE bench_filler (data BLOB)');
  while (statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0) < target) {
    await big.run('INSERT INTO bench_filler SELECT randomblob(4000) FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) a, (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) b');
  }
  await big.exec('PRAGMA journal_mode = WAL; PRAGMA wal_checkpoint(TRUNCATE)');
  await big.close();
  const once = spawnSync(tool('litestream'), ['replicate', '-once', '-force-snapshot', '-config', 'etc/litestream.yml'], { cwd: ROOT, env: backupEnv(file, bigReplica), encoding: 'utf8' });
  if (once.status !== 0) throw new Error(once.stderr + once.stdout);
  return { file, replica: bigReplica };
}

const ms = (value: number) => `${value.toFixed(0)} ms`;
try {
  // Alternating phases, so that the machine's other load falls on both sides alike.
  const rates: { without: number[]; with: number[] } = { without: [], with: [] };
  let delays: number[] = [];
  for (let round = 0; round < 2; round++) {
    rates.without.push(await writeMix(seconds * 1000));
    litestream = startLitestream();
    await sleep(1500);
    rates.with.push(await writeMix(seconds * 1000));
    if (round === 0) delays = await replicationDelays(40);
    await stopLitestream();
  }
  const show = (values: number[]) => `${(values.reduce((a, b) => a + b) / values.length).toFixed(0)} (${values.map((value) => value.toFixed(0)).join(', ')})`;
  console.log(`write mix (enroll + drop, 8 students, 3 instances), req/s: without Litestream ${show(rates.without)}, with it ${show(rates.with)}`);
  console.log(`replication delay, write answered -> in the backup (40 writes): p50 ${ms(quantile(delays, 0.5))}, p99 ${ms(quantile(delays, 0.99))}, max ${ms(Math.max(...delays))}`);
  for (const instance of instances) await instance.stop();
  const seededTimes = restoreTimes(db, replica);
  console.log(`restore, seeded size (${(statSync(db).size / 1024).toFixed(0)} KiB): litestream restore ${ms(seededTimes.restoreMs)}; with every check (bin/verify-backup.ts) ${ms(seededTimes.verifyMs)}`);
  const big = await grown(100);
  const bigTimes = restoreTimes(big.file, big.replica);
  console.log(`restore, 100x (${(statSync(big.file).size / 1024 / 1024).toFixed(1)} MiB): litestream restore ${ms(bigTimes.restoreMs)}; with every check (bin/verify-backup.ts) ${ms(bigTimes.verifyMs)}`);
} finally {
  await stopLitestream();
  for (const instance of instances) await instance.stop();
  await rm(dir, { recursive: true, force: true });
}

// The users database's snapshots: `litefs export` from the LiteFS primary into BACKUP_DIR/users,
// one file per snapshot named by its time, thinned by the retention of etc/backups.env; and
// `litefs import`, which replaces the database cluster-wide (the secondaries follow).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { backupSettings, stamp } from './backup-settings.ts';
import { checkDatabase, type Checked } from './sqlite-check.ts';
import { runTool } from './run-tool.ts';
import { removeLeftovers } from './leftovers.ts';

export interface Snapshot {
  file: string;
  time: Date;
}

const NAME = /^users-(\d{4}-\d\d-\d\dT\d\d)-(\d\d)-(\d\d\.\d{3}Z)\.db$/;

export async function listSnapshots(dir = backupSettings.usersSnapshots): Promise<Snapshot[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir))
    .map((name) => NAME.exec(name))
    .filter((match) => match !== null)
    .map((match) => ({ file: path.join(dir, match[0]), time: new Date(`${match[1]}:${match[2]}:${match[3]}`) }))
    .sort((a, b) => a.time.getTime() - b.time.getTime());
}

// The snapshot named by `which` (a file name or path, or a time: the last one taken at or before
// it), or the newest when undefined.
// A file named by its path outside BACKUP_DIR/users has no known time.
export async function findSnapshot(which: string | undefined): Promise<{ file: string; time?: Date }> {
  const snapshots = await listSnapshots();
  const dir = backupSettings.usersSnapshots;
  const byName = which === undefined ? undefined : snapshots.find((snapshot) => snapshot.file === path.resolve(dir, which) || path.basename(snapshot.file) === which);
  if (byName) return byName;
  // Any snapshot file, BACKUP_DIR/replaced/'s among them (to undo a restore), even with none in dir.
  if (which !== undefined && existsSync(which)) return { file: path.resolve(which) };
  if (!snapshots.length) throw new Error(`no users snapshot in ${dir}`);
  if (which === undefined) return snapshots.at(-1)!;
  const time = new Date(which);
  if (Number.isNaN(time.getTime())) throw new Error(`no users snapshot named ${which} in ${dir}, and it is not a time`);
  const before = snapshots.filter((snapshot) => snapshot.time <= time).at(-1);
  if (!before) throw new Error(`no users snapshot at or before ${time.toISOString()}: they run from ${snapshots[0].time.toISOString()} to ${snapshots.at(-1)!.time.toISOString()}`);
  return before;
}

const digest = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

// Exports the primary's database into a new snapshot, checked before it is named; none is kept
// when nothing changed since the newest.
export async function takeSnapshot(now = new Date()): Promise<{ snapshot: Snapshot; checked: Checked; unchanged: boolean }> {
  const dir = backupSettings.usersSnapshots;
  await mkdir(dir, { recursive: true });
  await removeLeftovers(dir, '.partial-');
  const partial = path.join(dir, `.partial-${process.pid}.db`);
  try {
    await runTool('litefs', ['export', '-name', 'users.db', '-url', backupSettings.primaryUrl, partial]);
    const checked = await checkDatabase(partial);
    const newest = (await listSnapshots()).at(-1);
    if (newest && (await digest(newest.file)) === (await digest(partial))) return { snapshot: newest, checked, unchanged: true };
    const snapshot = { file: path.join(dir, `users-${stamp(now)}.db`), time: now };
    await rename(partial, snapshot.file);
    await thin(dir, backupSettings.usersKeep(), now);
    return { snapshot, checked: { ...checked, file: snapshot.file }, unchanged: false };
  } finally {
    await rm(partial, { force: true });
  }
}

// Keeps the newest `recent`, and the newest of each hour (day) of the last `hourly` hours (`daily` days).
export async function thin(dir = backupSettings.usersSnapshots, { recent, hourly, daily } = backupSettings.usersKeep(), now = new Date()): Promise<string[]> {
  const snapshots = (await listSnapshots(dir)).reverse();
  const keep = new Set(snapshots.slice(0, recent));
  for (const [length, count, unitMs] of [[13, hourly, 3_600_000], [10, daily, 86_400_000]] as const) {
    const seen = new Set<string>();
    for (const snapshot of snapshots) {
      const period = snapshot.time.toISOString().slice(0, length);
      if (now.getTime() - snapshot.time.getTime() < count * unitMs && !seen.has(period)) keep.add(snapshot);
      seen.add(period);
    }
  }
  const removed = snapshots.filter((snapshot) => !keep.has(snapshot)).map((snapshot) => snapshot.file);
  for (const file of removed) await rm(file, { force: true });
  return removed;
}

export async function importSnapshot(file: string, url = backupSettings.primaryUrl): Promise<void> {
  await runTool('litefs', ['import', '-name', 'users.db', '-url', url, file]);
}

// Keeps what LiteFS holds now in BACKUP_DIR/replaced before a restore replaces it; undefined if it
// holds no users database.
export async function keepCurrent(url = backupSettings.primaryUrl): Promise<string | undefined> {
  await mkdir(backupSettings.replaced, { recursive: true });
  const kept = path.join(backupSettings.replaced, `users-${stamp(new Date())}.db`);
  try {
    await runTool('litefs', ['export', '-name', 'users.db', '-url', url, kept]);
    return kept;
  } catch (error) {
    await rm(kept, { force: true });
    if (/not found|no such|not exist/i.test((error as Error).message)) return undefined;
    throw error;
  }
}

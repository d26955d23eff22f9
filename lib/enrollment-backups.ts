// The enrollment database's Litestream replica (a `file` replica in BACKUP_DIR/enrollment): its
// restore points, a restore into a new file, and a sync on demand.
import { existsSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import process from 'node:process';
import { backupSettings } from './backup-settings.ts';
import { ROOT } from './config.ts';
import { runTool } from './run-tool.ts';

const SNAPSHOT_LEVEL = 9;

export interface LtxFile {
  level: number;
  min_txid: string;
  max_txid: string;
  size: number;
  timestamp: string; // RFC 3339, to the second
}

export interface RestorePoints {
  replica: string;
  earliest: Date; // the first snapshot: no restore before it
  latest: Date; // the last commit that reached the replica
  snapshots: LtxFile[];
  files: LtxFile[];
}

// `litestream ltx` gives times to the second; a file replica keeps each file's commit time, to the
// millisecond, as its modification time (file/replica_client.go), at ltx/LEVEL/MIN-MAX.ltx.
function createdAt(replica: string, file: LtxFile): Date {
  const name = path.join(replica, 'ltx', String(file.level), `${file.min_txid}-${file.max_txid}.ltx`);
  return existsSync(name) ? statSync(name).mtime : new Date(Date.parse(file.timestamp));
}

const replicaUrl = (replica: string) => `file://${replica}`;

export async function restorePoints(replica = backupSettings.enrollmentReplica): Promise<RestorePoints> {
  if (!existsSync(replica)) throw new Error(`no Litestream replica at ${replica} (is the litestream line of the Procfile running?)`);
  const files = JSON.parse(await runTool('litestream', ['ltx', '-json', '-level', 'all', replicaUrl(replica)])) as LtxFile[];
  const snapshots = files.filter((file) => file.level === SNAPSHOT_LEVEL);
  if (!snapshots.length) throw new Error(`the Litestream replica at ${replica} holds no snapshot: nothing to restore from`);
  const times = files.map((file) => createdAt(replica, file));
  return { replica, earliest: createdAt(replica, snapshots[0]), latest: new Date(Math.max(...times.map(Number))), snapshots, files };
}

export function reachable(points: RestorePoints): string {
  return `restore points of ${points.replica} run from ${points.earliest.toISOString()} to ${points.latest.toISOString()}`;
}

// Restores the state at `time` (the latest if undefined) into `output`, which must not exist.
// Returns the time of the last transaction restored.
export async function restoreInto(output: string, time: Date | undefined, replica = backupSettings.enrollmentReplica): Promise<Date> {
  const points = await restorePoints(replica);
  if (time && time.getTime() <= points.earliest.getTime()) throw new Error(`cannot restore to ${time.toISOString()}: ${reachable(points)}`);
  if (time && time.getTime() > Date.now()) throw new Error(`cannot restore to ${time.toISOString()}, in the future: ${reachable(points)}`);
  const target = time ? ['-timestamp', time.toISOString()] : [];
  let plan: { files: LtxFile[] };
  try {
    plan = JSON.parse(await runTool('litestream', ['restore', '-dry-run', '-json', '-o', output, ...target, replicaUrl(replica)]));
  } catch (error) {
    throw new Error(`cannot restore ${time ? `to ${time.toISOString()}` : 'the latest'}: ${(error as Error).message}; ${reachable(points)}`);
  }
  try {
    await runTool('litestream', ['restore', '-integrity-check', 'full', '-o', output, ...target, replicaUrl(replica)]);
  } catch (error) {
    await removeDatabase(output);
    throw new Error(`restore from ${replica} failed, nothing was replaced: ${(error as Error).message}`);
  }
  await rm(`${output}-txid`, { force: true });
  return new Date(Math.max(...plan.files.map((file) => createdAt(replica, file).getTime())));
}

export async function removeDatabase(file: string): Promise<void> {
  for (const suffix of ['', '-wal', '-shm', '-journal', '-txid']) await rm(`${file}${suffix}`, { force: true });
}

// Makes the running Litestream ship what it has not yet; with none running, one pass of its own
// (a snapshot included). The environment is what etc/litestream.yml expands.
export async function syncEnrollmentNow(): Promise<string> {
  const { enrollmentDb, litestreamSocket, enrollmentReplica } = backupSettings;
  if (await litestreamRunning()) {
    return runTool('litestream', ['sync', '-socket', litestreamSocket, '-wait', enrollmentDb]).catch((error) => {
      throw new Error(`the running Litestream did not sync (${error.message}); is the formation's litestream line up?`);
    });
  }
  const env = { ...process.env, ENROLLMENT_DB: enrollmentDb, ENROLLMENT_BACKUP_DIR: enrollmentReplica, LITESTREAM_SOCKET: litestreamSocket };
  return runTool('litestream', ['replicate', '-once', '-force-snapshot', '-config', `${ROOT}/etc/litestream.yml`], env);
}

// Whether a Litestream answers on the control socket (a killed one leaves the file behind).
export function litestreamRunning(socketPath = backupSettings.litestreamSocket): Promise<boolean> {
  if (!existsSync(socketPath)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = connect(socketPath, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

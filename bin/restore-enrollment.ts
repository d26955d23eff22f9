// usage: bin/node bin/restore-enrollment.ts --yes [TIME]
//
// Replaces the enrollment database (ENROLLMENT_DB, default var/enrollment.db) with its state at TIME
// (ISO 8601 UTC, e.g. 2026-12-03T09:58:00Z), or the latest in the Litestream replica
// (BACKUP_DIR/enrollment). bin/list-backups.ts enrollment says which times can be reached.
// The state restored is the one Litestream had shipped at TIME: it ships every second, so commits
// of the last second before TIME may not be in it. It is restored into a new file beside the
// database and checked (integrity, row counts, every rule of lib/rules.ts) before anything is
// replaced. Then a copy of the database it replaces (and Litestream's state) goes to
// BACKUP_DIR/replaced/, the restored file takes the database's name in one rename (so the name is
// never empty, whatever fails), and the replica's history so far moves there too: Litestream starts
// a new history from the restored state when the formation starts.
// Refuses while the formation runs (an enrollment instance on BASE_PORT + 100..102, or Litestream):
// stop it (Ctrl-C on npm start), restore, start it again.
//   --yes  needed: says that what was written after TIME may go (it is kept in BACKUP_DIR/replaced)
import { existsSync } from 'node:fs';
import { cp, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { backupSettings, stamp } from '../lib/backup-settings.ts';
import { Database } from '../lib/db.ts';
import { config } from '../lib/config.ts';
import { litestreamRunning } from '../lib/enrollment-backups.ts';
import { partialPath, removeKilledRestores, restoreChecked } from '../lib/enrollment-restore.ts';
import { describeRows } from '../lib/sqlite-check.ts';
import { commandLine, listening, refuse } from './cli.ts';
import { parseTime } from './restore-time.ts';

const { flags, operands } = commandLine(import.meta.filename, { flags: ['yes'], max: 1 });
const time = parseTime(import.meta.filename, operands[0]);
const { enrollmentDb: db, enrollmentReplica, litestreamSocket, litestreamMeta, replaced } = backupSettings;
if (!flags.yes) refuse(import.meta.filename, `this replaces ${db} with its state at ${time?.toISOString() ?? 'the latest backup'}: add --yes`);

const running: string[] = [];
for (const address of config.gateway.enrollment) if (await listening(Number(address.split(':')[1]))) running.push(`an enrollment instance on ${address}`);
if (await litestreamRunning()) running.push(`Litestream (${litestreamSocket})`);
if (running.length) {
  console.error(`restore-enrollment.ts: the formation runs (${running.join(', ')}): stop it first (Ctrl-C on npm start), then restore and start it again.`);
  console.error(`To look at a backup without stopping anything: bin/node bin/verify-backup.ts enrollment ${operands[0] ?? ''}`.trimEnd());
  process.exit(1);
}

await removeKilledRestores(db);
const partial = partialPath(db);
const kept = path.join(replaced, `enrollment-${stamp(new Date())}`);
let swapped = false;
try {
  console.log(`restoring ${time ? `the state shipped at ${time.toISOString()}` : 'the latest state'} from ${enrollmentReplica} ...`);
  const { checked, restoredTo } = await restoreChecked(partial, time);
  console.log(`restored and checked (integrity ok, rules hold): the state Litestream had shipped at ${restoredTo.toISOString()}; ${describeRows(checked)}`);
  await mkdir(kept, { recursive: true });
  if (existsSync(db)) {
    // Everything into the database file itself, so that one copy keeps it and no WAL of the old
    // database is left to be read as the new one's.
    const old = await Database.open(db, { create: false });
    await old.exec('PRAGMA wal_checkpoint(TRUNCATE)').finally(() => old.close());
    await cp(db, path.join(kept, path.basename(db)));
  }
  if (existsSync(litestreamMeta)) await cp(litestreamMeta, path.join(kept, path.basename(litestreamMeta)), { recursive: true });
  await rm(`${db}-wal`, { force: true });
  await rm(`${db}-shm`, { force: true });
  await rename(partial, db);
  swapped = true;
  await rm(litestreamMeta, { recursive: true, force: true });
  if (existsSync(enrollmentReplica)) await move(enrollmentReplica, path.join(kept, 'litestream-replica'));
  console.log(`${db} is the restored database; the one it replaced, and the replica's history until now, are in ${kept}`);
} catch (error) {
  await rm(partial, { force: true });
  const where = swapped ? `${db} is the restored database` : `${db} is untouched`;
  console.error(`restore-enrollment.ts: ${(error as Error).message} (${where}; copies kept so far are in ${kept})`);
  process.exit(1);
}

// A rename, or a copy when BACKUP_DIR is on another disk than the database.
async function move(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await cp(from, to, { recursive: true });
    await rm(from, { recursive: true });
  }
}

// usage: bin/node bin/verify-backup.ts users|enrollment [SNAPSHOT|TIME]
//
// Checks that a backup restores into a sound database, without touching the live ones: restores it
// into a temporary directory, runs PRAGMA integrity_check, counts the rows of every table (and, for
// enrollment, checks every rule of lib/rules.ts), prints what it found, and deletes the copy.
//   users [SNAPSHOT]     a snapshot of BACKUP_DIR/users (its file name, or a time: the last one
//                        taken then or before); the newest by default
//   enrollment [TIME]    the state at TIME (ISO 8601, e.g. 2026-12-03T09:58:00Z); the latest by default
// Exit 1, naming the file, when the backup is missing, corrupt, or cannot reach TIME.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { restoreChecked } from '../lib/enrollment-restore.ts';
import { checkDatabase, describeRows } from '../lib/sqlite-check.ts';
import { findSnapshot } from '../lib/users-backups.ts';
import { commandLine, refuse } from './cli.ts';
import { parseTime } from './restore-time.ts';

const { operands } = commandLine(import.meta.filename, { min: 1, max: 2 });
const [which, target] = operands;
if (!['users', 'enrollment'].includes(which)) refuse(import.meta.filename, `unknown database '${which}'`);
const time = which === 'enrollment' ? parseTime(import.meta.filename, target) : undefined;

const dir = await mkdtemp(path.join(os.tmpdir(), 'verify-backup-'));
try {
  if (which === 'users') {
    const snapshot = await findSnapshot(target);
    const checked = await checkDatabase(snapshot.file);
    console.log(`users: ${snapshot.file} is sound: integrity ok; ${describeRows(checked)}`);
  } else {
    const { checked, restoredTo } = await restoreChecked(path.join(dir, 'enrollment.db'), time);
    console.log(`enrollment: the state of ${restoredTo.toISOString()} restores soundly: integrity ok, rules hold; ${describeRows(checked)}`);
  }
} catch (error) {
  console.error(`verify-backup.ts: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}

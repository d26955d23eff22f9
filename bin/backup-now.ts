// usage: bin/node bin/backup-now.ts [users|enrollment]
//
// Backs up both databases now (or the one named), without waiting for the schedule:
// - users: a `litefs export` from the LiteFS primary (BASE_PORT + 200), checked, into
//   BACKUP_DIR/users (none is written when nothing changed since the newest snapshot);
// - enrollment: the running Litestream (the Procfile's litestream line) ships what it has not yet,
//   or, with none running, one pass of Litestream's own with a fresh snapshot.
// BACKUP_DIR defaults to backups/ beside ENROLLMENT_DB (var/backups).
import process from 'node:process';
import { syncEnrollmentNow } from '../lib/enrollment-backups.ts';
import { describeRows } from '../lib/sqlite-check.ts';
import { takeSnapshot } from '../lib/users-backups.ts';
import { commandLine, refuse } from './cli.ts';

const { operands } = commandLine(import.meta.filename, { max: 1 });
const which = operands[0];
if (which && !['users', 'enrollment'].includes(which)) refuse(import.meta.filename, `unknown database '${which}'`);

try {
  if (which !== 'enrollment') {
    const { snapshot, checked, unchanged } = await takeSnapshot();
    console.log(unchanged ? `users: unchanged since ${snapshot.file}` : `users: ${snapshot.file} (${describeRows(checked)})`);
  }
  if (which !== 'users') {
    await syncEnrollmentNow();
    console.log('enrollment: synced to the Litestream replica');
  }
} catch (error) {
  console.error(`backup-now.ts: ${(error as Error).message}`);
  process.exit(1);
}

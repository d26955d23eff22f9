// usage: bin/node bin/list-backups.ts [users|enrollment]
//
// Lists the restore points of both databases (or of the one named), with their times (UTC):
// - users: every snapshot in BACKUP_DIR/users, oldest first (bin/restore-users.ts takes one);
// - enrollment: the span that bin/restore-enrollment.ts can reach to the second, from the oldest
//   Litestream snapshot to the last commit in the replica, then the replica's snapshots.
// Reads the backups only; the databases are not touched.
import process from 'node:process';
import { restorePoints } from '../lib/enrollment-backups.ts';
import { backupSettings } from '../lib/backup-settings.ts';
import { listSnapshots } from '../lib/users-backups.ts';
import { commandLine, refuse } from './cli.ts';

const { operands } = commandLine(import.meta.filename, { max: 1 });
const which = operands[0];
if (which && !['users', 'enrollment'].includes(which)) refuse(import.meta.filename, `unknown database '${which}'`);

let failed = false;
if (which !== 'enrollment') {
  const snapshots = await listSnapshots();
  console.log(`users: ${snapshots.length} snapshots in ${backupSettings.usersSnapshots}`);
  for (const snapshot of snapshots) console.log(`  ${snapshot.time.toISOString()}  ${snapshot.file}`);
}
if (which !== 'users') {
  try {
    const points = await restorePoints();
    console.log(`enrollment: any time from ${points.earliest.toISOString()} to ${points.latest.toISOString()} (${points.replica})`);
    for (const snapshot of points.snapshots) console.log(`  snapshot ${snapshot.timestamp}  txid ${snapshot.max_txid}  ${snapshot.size} bytes`);
  } catch (error) {
    console.error(`enrollment: ${(error as Error).message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);

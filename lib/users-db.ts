// Opens the users database on the LiteFS primary (the only place that is ever written) and applies
// its schema, for the users service and its seed alike.
import path from 'node:path';
import { config, ROOT } from './config.ts';
import { Database } from './db.ts';
import { isFuseMount } from './litefs.ts';

// Throws while the primary's mount is not there: opening the file then would create a database
// in the bare directory underneath, hidden once the mount appears. `create: false` (reopening a
// database that exists) never creates one: while a restarted litefs is clearing its stale mount,
// the mount can vanish between the check and the open, and a created file would be a new, empty
// database in the bare directory that every later write went to. `file` and `litefs` default to the
// configured ones.
export async function openUsersPrimary({ create = true, file = config.users.primaryDb, litefs = config.users.litefs } = {}): Promise<Database> {
  if (litefs && !(await isFuseMount(path.dirname(file)))) throw new Error(`${path.dirname(file)} is not a LiteFS mount (yet)`);
  // A write waits for the lock at most a second: a longer wait is reported as the primary away.
  const db = await Database.open(file, { busyTimeoutMs: 1000, create });
  try {
    // sql/users.sql sets the rollback journal. Switching a live LiteFS cluster out of WAL breaks its
    // secondaries ("checksum does not match"), so a database made in WAL mode is migrated, not switched.
    const { journal_mode: mode } = (await db.get<{ journal_mode: string }>('PRAGMA journal_mode'))!;
    if (mode === 'wal') throw new Error(`${file} is in WAL mode (made by an older version): stop the formation and run bin/migrate-users-journal.sh --yes`);
    await db.execFile(path.join(ROOT, 'sql/users.sql'));
    await db.execFile(path.join(ROOT, 'sql/idempotency.sql'));
    await addPasswordVersion(db);
    return db;
  } catch (error) {
    await db.close().catch(() => {});
    throw error;
  }
}

// Databases made before refresh tokens carried the password's version lack the column.
async function addPasswordVersion(db: Database): Promise<void> {
  await db.transaction(async (tx) => {
    const columns = await tx.all<{ name: string }>('PRAGMA table_info(users)');
    if (columns.some((column) => column.name === 'password_version')) return;
    await tx.run('ALTER TABLE users ADD COLUMN password_version INTEGER NOT NULL DEFAULT 1');
  });
}

// Opens the users database on the LiteFS primary (the only place that is ever written) and applies
// its schema, for the users service and its seed alike.
import path from 'node:path';
import { config, ROOT } from './config.ts';
import { Database } from './db.ts';
import { waitForMount } from './litefs.ts';

export async function openUsersPrimary(): Promise<Database> {
  const { primaryDb, litefs } = config.users;
  if (litefs) await waitForMount(path.dirname(primaryDb));
  const db = await Database.open(primaryDb);
  // sql/users.sql sets the rollback journal. Switching a live LiteFS cluster out of WAL breaks its
  // secondaries ("checksum does not match"), so a database made in WAL mode is migrated, not switched.
  const { journal_mode: mode } = (await db.get<{ journal_mode: string }>('PRAGMA journal_mode'))!;
  if (mode === 'wal') {
    await db.close();
    throw new Error(`${primaryDb} is in WAL mode (made by an older version): stop the formation and run bin/migrate-users-journal.sh`);
  }
  await db.execFile(path.join(ROOT, 'sql/users.sql'));
  return db;
}

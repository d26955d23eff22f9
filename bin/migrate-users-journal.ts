// The two database steps of bin/migrate-users-journal.sh, each run against the LiteFS primary:
//   node bin/migrate-users-journal.ts export FILE   copies every account into FILE, a plain SQLite file
//   node bin/migrate-users-journal.ts import FILE   fills a new, empty users database from FILE
// Rows are copied through two connections: a transaction across ATTACHed databases needs a
// super-journal file beside the database, which LiteFS's mount does not allow (disk I/O error).
import path from 'node:path';
import process from 'node:process';
import { config, ROOT } from '../lib/config.ts';
import { Database } from '../lib/db.ts';
import { waitForMount } from '../lib/litefs.ts';
import { openUsersPrimary } from '../lib/users-db.ts';

async function copyAccounts(from: Database, to: Database): Promise<number> {
  const users = await from.all<Record<string, unknown>>('SELECT id, username, password_hash, created_at FROM users');
  const roles = await from.all<Record<string, unknown>>('SELECT user_id, role FROM user_roles');
  await to.transaction(async (tx) => {
    for (const row of users) await tx.run('INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)', Object.values(row));
    for (const row of roles) await tx.run('INSERT INTO user_roles (user_id, role) VALUES (?, ?)', Object.values(row));
  });
  return users.length;
}

const [step, file] = process.argv.slice(2);
if (!['export', 'import'].includes(step) || !file) {
  console.error('usage: node bin/migrate-users-journal.ts export|import FILE');
  process.exit(2);
}
await waitForMount(path.dirname(config.users.primaryDb));
const primary = step === 'export' ? await Database.open(config.users.primaryDb) : await openUsersPrimary();
const copy = await Database.open(file);
if (step === 'export') await copy.execFile(path.join(ROOT, 'sql/users.sql'));
const count = step === 'export' ? await copyAccounts(primary, copy) : await copyAccounts(copy, primary);
console.log(`migrate: ${step === 'export' ? `copied ${count} accounts to ${file}` : `loaded ${count} accounts into ${config.users.primaryDb}`}`);
await copy.close();
await primary.close();

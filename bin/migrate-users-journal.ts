// usage: bin/node bin/migrate-users-journal.ts export|import FILE
//
// The two database steps of bin/migrate-users-journal.sh (run that), each against the LiteFS
// primary (USERS_DB), which must be running:
//   export FILE   copies every account into FILE, a plain SQLite file
//   import FILE   fills a new, empty users database from FILE
// Rows are copied through two connections: a transaction across ATTACHed databases needs a
// super-journal file beside the database, which LiteFS's mount does not allow (disk I/O error).
import path from 'node:path';
import { config, ROOT } from '../lib/config.ts';
import { Database } from '../lib/db.ts';
import { waitForMount } from '../lib/litefs.ts';
import { openUsersPrimary } from '../lib/users-db.ts';
import { commandLine, refuse } from './cli.ts';

const [step, file] = commandLine(import.meta.filename, { min: 2, max: 2 }).operands;
if (step !== 'export' && step !== 'import') refuse(import.meta.filename, `unknown step "${step}"`);

async function copyAccounts(from: Database, to: Database): Promise<number> {
  const users = await from.all<Record<string, unknown>>('SELECT id, username, password_hash, created_at FROM users');
  const roles = await from.all<Record<string, unknown>>('SELECT user_id, role FROM user_roles');
  await to.transaction(async (tx) => {
    for (const row of users) await tx.run('INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)', Object.values(row));
    for (const row of roles) await tx.run('INSERT INTO user_roles (user_id, role) VALUES (?, ?)', Object.values(row));
  });
  return users.length;
}

await waitForMount(path.dirname(config.users.primaryDb));
const primary = step === 'export' ? await Database.open(config.users.primaryDb) : await openUsersPrimary();
const copy = await Database.open(file);
if (step === 'export') await copy.execFile(path.join(ROOT, 'sql/users.sql'));
const count = step === 'export' ? await copyAccounts(primary, copy) : await copyAccounts(copy, primary);
console.log(`migrate: ${step === 'export' ? `copied ${count} accounts to ${file}` : `loaded ${count} accounts into ${config.users.primaryDb}`}`);
await copy.close();
await primary.close();

// usage: bin/node bin/seed-users.ts   (the Procfile's users line runs it)
//
// Creates the users database (USERS_DB) through the LiteFS primary (never a secondary), waiting for
// its mount, and adds the development accounts of lib/roster.ts. Accounts that exist are left as
// they are.
import path from 'node:path';
import { config } from '../lib/config.ts';
import { waitForMount } from '../lib/litefs.ts';
import { openUsersPrimary } from '../lib/users-db.ts';
import { hashPassword } from '../lib/password.ts';
import { DEV_PASSWORD, INSTRUCTORS, REGISTRARS, STUDENTS } from '../lib/roster.ts';
import { commandLine } from './cli.ts';

commandLine(import.meta.filename, {});

const { primaryDb, pbkdf2Iterations, litefs } = config.users;
if (litefs) await waitForMount(path.dirname(primaryDb));
const db = await openUsersPrimary();

// One hash (one salt) serves every development account: hashing 130 passwords at 600,000
// iterations would add half a minute to each start for no gain on throw-away data.
const passwordHash = await hashPassword(DEV_PASSWORD, pbkdf2Iterations);
const accounts: [string, string][] = [
  ...REGISTRARS.map((name): [string, string] => [name, 'Registrar']),
  ...INSTRUCTORS.map((name): [string, string] => [name, 'Instructor']),
  ...STUDENTS.map((name): [string, string] => [name, 'Student']),
];

let added = 0;
await db.transaction(async (tx) => {
  for (const [username, role] of accounts) {
    const { changes, lastID } = await tx.run('INSERT OR IGNORE INTO users (username, password_hash) VALUES (?, ?)', [username, passwordHash]);
    if (changes === 0) continue;
    await tx.run('INSERT INTO user_roles (user_id, role) VALUES (?, ?)', [lastID, role]);
    added++;
  }
});
const { count } = (await db.get<{ count: number }>('SELECT count(*) AS count FROM users'))!;
console.log(`users: ${added} development accounts added, ${count} in ${primaryDb} (password "${DEV_PASSWORD}")`);
await db.close();

// Opens the enrollment database with its schema applied, for the service, its seed and its tests.
// A plain file (one host) is in WAL mode: readers never wait for the writer. On LiteFS (bin/hosts.sh)
// it keeps the rollback journal, like the users database: a replica's readers and WAL's shared
// memory do not survive a dying litefs (../shared/ARCHITECTURE.md). A replica's copy is opened
// read-only, once its host's litefs is mounted and the primary's copy has reached it.
import { access } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { config, ROOT } from './config.ts';
import { Database } from './db.ts';
import { isFuseMount, waitForMount } from './litefs.ts';

type Settings = Pick<typeof config.enrollment, 'db' | 'litefs'>;

// `create: false` reopens a database that exists (after its litefs died): it waits for nothing and
// creates nothing, and throws while the mount is not back (lib/primary.ts tries again).
export async function openEnrollmentDb({ db: file, litefs }: Settings = config.enrollment, { create = true } = {}): Promise<Database> {
  if (litefs !== 'off' && create) await waitForMount(path.dirname(file));
  if (litefs !== 'off' && !create && !(await isFuseMount(path.dirname(file)))) throw new Error(`${path.dirname(file)} is not a LiteFS mount (yet)`);
  if (litefs === 'replica') {
    if (create) await replicated(file);
    // LiteFS applies each of the primary's transactions under the write lock: with writes every few
    // milliseconds, a read waiting at most 100 ms met SQLITE_BUSY now and then.
    const db = await Database.open(file, { readonly: true, busyTimeoutMs: 2000 });
    await db.run('PRAGMA foreign_keys = ON');
    return db;
  }
  const db = await Database.open(file, { create });
  if (litefs === 'off') await db.run('PRAGMA journal_mode = WAL');
  await db.execFile(path.join(ROOT, 'sql/enrollment.sql'));
  await db.execFile(path.join(ROOT, 'sql/idempotency.sql'));
  return db;
}

async function replicated(file: string, timeoutMs = 60_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ; await sleep(250)) {
    try {
      return await access(file);
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${file} has not reached this replica after ${timeoutMs / 1000} s`, { cause: error });
    }
  }
}

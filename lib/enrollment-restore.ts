// A restore of the enrollment database from its Litestream replica into a new file beside it, and
// the checks that file must pass before it replaces anything: integrity, row counts, the rules.
import { statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { Database } from './db.ts';
import { restoreInto, removeDatabase } from './enrollment-backups.ts';
import { checkEnrollmentRules } from './rules.ts';
import { checkDatabase, type Checked } from './sqlite-check.ts';
import { removeLeftovers } from './leftovers.ts';

export async function restoreChecked(output: string, time: Date | undefined): Promise<{ checked: Checked; restoredTo: Date }> {
  const restoredTo = await restoreInto(output, time);
  try {
    const checked = await checkDatabase(output);
    const db = await Database.open(output, { readonly: true });
    const broken = await checkEnrollmentRules(db).finally(() => db.close());
    if (broken.length) throw new Error(`${output} breaks the enrollment rules: ${broken.slice(0, 5).join('; ')}`);
    // The checks' read-only connection leaves an empty WAL and its index: they must not be moved
    // in beside the database with another's name, and nothing is in them.
    if (statSync(`${output}-wal`, { throwIfNoEntry: false })?.size) throw new Error(`${output}-wal is not empty after the checks`);
    await rm(`${output}-wal`, { force: true });
    await rm(`${output}-shm`, { force: true });
    return { checked, restoredTo };
  } catch (error) {
    await removeDatabase(output);
    throw error;
  }
}

export const partialPath = (db: string) => path.join(path.dirname(db), `.${path.basename(db)}.restoring-${process.pid}`);

// What a killed restore of `db` left behind (with its -wal and -shm).
export const removeKilledRestores = (db: string) => removeLeftovers(path.dirname(db), `.${path.basename(db)}.restoring-`);

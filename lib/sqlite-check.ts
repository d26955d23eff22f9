// What a backup must pass before it may replace a live database: SQLite's full integrity check,
// then the row count of every table (read-only: the file is never changed).
import { Database } from './db.ts';

export interface Checked {
  file: string;
  rows: Record<string, number>;
}

export async function checkDatabase(file: string): Promise<Checked> {
  let db: Database;
  try {
    db = await Database.open(file, { readonly: true });
  } catch (error) {
    throw new Error(`${file}: cannot open it as SQLite (${(error as Error).message})`);
  }
  try {
    const problems = (await db.all<{ integrity_check: string }>('PRAGMA integrity_check')).map((row) => row.integrity_check);
    if (problems.join() !== 'ok') throw new Error(`${file} is corrupt: ${problems.slice(0, 5).join('; ')}`);
    const tables = await db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_litestream%' ESCAPE '\\' ORDER BY name");
    if (!tables.length) throw new Error(`${file} has no tables`);
    const rows: Record<string, number> = {};
    for (const { name } of tables) rows[name] = (await db.get<{ n: number }>(`SELECT count(*) AS n FROM "${name}"`))!.n;
    return { file, rows };
  } catch (error) {
    if ((error as Error).message.startsWith(file)) throw error;
    throw new Error(`${file}: ${(error as Error).message}`);
  } finally {
    await db.close();
  }
}

export function describeRows(checked: Checked): string {
  return Object.entries(checked.rows).map(([table, n]) => `${table} ${n}`).join(', ');
}

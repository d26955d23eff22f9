// usage: bin/node bin/replication-lag.ts [WRITES]   (starts and removes its own cluster)
//
// Replication lag of the real LiteFS cluster: for each of WRITES writes (default 200), the time from
// COMMIT returning on the primary to the row being readable on each secondary.
import { Database } from '../lib/db.ts';
import { startCluster } from '../harness/litefs-cluster.ts';
import { quantile } from '../harness/support.ts';
import { commandLine, refuse } from './cli.ts';

const [count = '200'] = commandLine(import.meta.filename, { max: 1 }).operands;
const writes = Number(count);
if (!Number.isSafeInteger(writes) || writes < 1) refuse(import.meta.filename, `WRITES must be a positive integer, got "${count}"`);
const cluster = await startCluster();
try {
  const primary = await Database.open(cluster.dbFile('primary'));
  await primary.exec('PRAGMA journal_mode = WAL; CREATE TABLE probe (id INTEGER PRIMARY KEY)');
  await primary.run('INSERT INTO probe VALUES (0)');
  const secondaries = {} as Record<'secondary1' | 'secondary2', Database>;
  for (const node of ['secondary1', 'secondary2'] as const) {
    // The database file appears on a secondary with its first replicated commit.
    for (;;) {
      try {
        secondaries[node] = await Database.open(cluster.dbFile(node), { readonly: true });
        if (await secondaries[node].get('SELECT 1 FROM probe WHERE id = 0')) break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  }

  const lags: Record<string, number[]> = { secondary1: [], secondary2: [] };
  for (let id = 1; id <= writes; id++) {
    await primary.run('INSERT INTO probe VALUES (?)', [id]);
    const committed = performance.now();
    await Promise.all(
      Object.entries(secondaries).map(async ([node, db]) => {
        while (!(await db.get('SELECT 1 FROM probe WHERE id = ?', [id]))) await new Promise((resolve) => setImmediate(resolve));
        lags[node].push(performance.now() - committed);
      }),
    );
  }

  console.log(`LiteFS replication lag over ${writes} writes (commit on the primary -> row readable), ms:`);
  for (const [node, values] of Object.entries(lags)) {
    const at = (q: number) => quantile(values, q).toFixed(2);
    console.log(`  ${node}: p50 ${at(0.5)}  p99 ${at(0.99)}  max ${at(1)}`);
  }
  await Promise.all([primary, ...Object.values(secondaries)].map((db) => db.close()));
} finally {
  await cluster.stop();
}

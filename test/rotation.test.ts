import assert from 'node:assert/strict';
import { copyFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Database, type Connection } from '../lib/db.ts';
import { ReadRotation } from '../lib/rotation.ts';
import { tempDir } from '../harness/support.ts';

// Each file answers with its own name, so a read says where it was served from.
async function namedDatabase(file: string, name: string): Promise<Database> {
  const db = await Database.open(file);
  await db.exec(`CREATE TABLE whoami (name TEXT); INSERT INTO whoami VALUES ('${name}');`);
  return db;
}

const whoami = async (db: Connection) => (await db.get<{ name: string }>('SELECT name FROM whoami'))!.name;

describe('read rotation (lib/rotation.ts)', () => {
  let dir: string;
  let primary: Database;

  beforeEach(async () => {
    dir = await tempDir('rotation');
    primary = await namedDatabase(path.join(dir, 'primary.db'), 'primary');
    for (const name of ['one', 'two']) await (await namedDatabase(path.join(dir, `${name}.db`), name)).close();
  });
  afterEach(() => primary.close());

  const rotation = (files: string[], benchMs = 50) =>
    new ReadRotation(
      files.map((name) => ({ name, file: path.join(dir, `${name}.db`) })),
      { name: 'primary', db: primary },
      { benchMs },
    );

  it('reads from each replica in turn', async () => {
    const reads = rotation(['one', 'two']);
    const served = [];
    for (let i = 0; i < 6; i++) served.push((await reads.read(whoami)).value);
    assert.deepEqual(served, ['one', 'two', 'one', 'two', 'one', 'two']);
    await reads.close();
  });

  it('skips a replica that cannot be read, with no failed read', async () => {
    const reads = rotation(['one', 'missing']);
    const served = [];
    for (let i = 0; i < 6; i++) served.push((await reads.read(whoami)).value);
    assert.deepEqual(served, Array(6).fill('one'));
    await reads.close();
  });

  it('falls back to the primary when no replica answers', async () => {
    const reads = rotation(['missing', 'gone']);
    assert.deepEqual(await reads.read(whoami), { value: 'primary', served: 'primary' });
    await reads.close();
  });

  it('gives a replica its share again once it is back', async () => {
    await rm(path.join(dir, 'two.db'));
    const reads = rotation(['one', 'two'], 20);
    assert.equal((await reads.read(whoami)).value, 'one');
    assert.equal((await reads.read(whoami)).value, 'one');
    await copyFile(path.join(dir, 'one.db'), path.join(dir, 'two.db'));
    await new Promise((resolve) => setTimeout(resolve, 40));
    const served = [];
    for (let i = 0; i < 4; i++) served.push((await reads.read(whoami)).served);
    assert.deepEqual(served.sort(), ['one', 'one', 'two', 'two']);
    await reads.close();
  });

  it('benches a replica whose query errors and retries the read on the next one', async () => {
    const reads = rotation(['one', 'two']);
    let calls = 0;
    const flaky = async (db: Connection) => {
      calls++;
      if (db.file.endsWith('one.db')) throw new Error('disk I/O error');
      return whoami(db);
    };
    assert.equal((await reads.read(flaky)).value, 'two');
    assert.equal((await reads.read(flaky)).value, 'two');
    assert.equal(calls, 3);
    await reads.close();
  });

  it('sends concurrent reads to the healthy replica, never to the fallback, while one fails', async () => {
    const reads = rotation(['one', 'two']);
    const failOnOne = async (db: Connection) => {
      if (db.file.endsWith('one.db')) throw new Error('disk I/O error');
      return whoami(db);
    };
    const served = await Promise.all(Array.from({ length: 50 }, () => reads.read(failOnOne)));
    assert.deepEqual(new Set(served.map((read) => read.served)), new Set(['two']));
    await reads.close();
  });
  it('gives a replica whose read hangs no more work until that read returns, so it holds one thread at most', async () => {
    // Only the replica that hangs has a short timeout: a slow read of the healthy one is no failure.
    const reads = new ReadRotation(
      [
        { name: 'one', file: path.join(dir, 'one.db'), timeoutMs: 50 },
        { name: 'two', file: path.join(dir, 'two.db') },
      ],
      { name: 'primary', db: primary },
      { benchMs: 10 },
    );
    let release = () => {};
    const hung = new Promise<string>((resolve) => (release = () => resolve('one, late')));
    let sentToOne = 0;
    const query = async (db: Connection) => {
      const name = await whoami(db);
      if (name !== 'one') return name;
      sentToOne++;
      return hung; // the first read given to "one" hangs
    };
    const served = [];
    for (let i = 0; i < 6; i++) {
      served.push((await reads.read(query)).value);
      await new Promise((resolve) => setTimeout(resolve, 20)); // longer than the bench
    }
    assert.equal(sentToOne, 1, 'no second read for a replica whose first has not returned');
    assert.deepEqual(served, Array(6).fill('two'));
    release();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const after = [];
    for (let i = 0; i < 4; i++) after.push((await reads.read(whoami)).value);
    assert.deepEqual(after.sort(), ['one', 'one', 'two', 'two']);
    await reads.close();
  });
});

// What a killed backup or restore left behind (work files named with its pid) is removed by the next
// run, and only when its process is gone.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { removeLeftovers } from '../lib/leftovers.ts';
import { tempDir } from '../harness/support.ts';

describe('leftovers of a killed run (lib/leftovers.ts)', () => {
  it("removes a dead process's work files and keeps a live one's and any other file", async () => {
    const dir = await tempDir('leftovers');
    const dead = spawnSync('true').pid!; // exited, so no process has this pid now (barring reuse)
    const names = [`.partial-${dead}.db`, `.users.db.restoring-${dead}-wal`, `.partial-${process.pid}.db`, `.partial-${process.ppid}.db`, 'users-2026.db'];
    for (const name of names) await writeFile(path.join(dir, name), '');
    assert.deepEqual(await removeLeftovers(dir, '.partial-'), [`.partial-${dead}.db`]);
    assert.deepEqual(await removeLeftovers(dir, '.users.db.restoring-'), [`.users.db.restoring-${dead}-wal`]);
    assert.deepEqual((await readdir(dir)).sort(), [`.partial-${process.pid}.db`, `.partial-${process.ppid}.db`, 'users-2026.db'].sort());
  });
});

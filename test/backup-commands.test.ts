// The backup commands' refusals and errors, without a formation: a restore without --yes or over a
// running formation, a missing replica, a corrupt snapshot or replica file (named, and nothing
// replaced), and the users snapshots' retention.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import process from 'node:process';
import { ROOT } from '../lib/config.ts';
import { listSnapshots, thin } from '../lib/users-backups.ts';
import { stamp } from '../lib/backup-settings.ts';
import { backupSettingsIn, runBin } from './backup-formation.ts';
import { randomBasePort, tempDir } from '../harness/support.ts';

const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('backup commands: refusals and clear errors', function () {
  this.timeout(60_000);
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let db: string;

  before(async () => {
    dir = await tempDir('backup-commands');
    env = { ...process.env, ...backupSettingsIn(dir), BASE_PORT: String(randomBasePort()) };
    db = env.ENROLLMENT_DB!;
    const seeded = spawnSync(process.execPath, ['bin/seed-enrollment.ts'], { cwd: ROOT, env, encoding: 'utf8' });
    assert.equal(seeded.status, 0, seeded.stderr);
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('say where there is no backup yet: the directory is named', async () => {
    const listed = await runBin('list-backups.ts', ['enrollment'], env);
    assert.equal(listed.status, 1);
    assert.match(listed.stderr, new RegExp(`no Litestream replica at ${path.join(dir, 'backups/enrollment')}`));
    const users = await runBin('verify-backup.ts', ['users'], env);
    assert.equal(users.status, 1);
    assert.match(users.stderr, new RegExp(`no users snapshot in ${path.join(dir, 'backups/users')}`));
  });

  it('back up the enrollment database with no Litestream running, and verify it without touching it', async () => {
    const backedUp = await runBin('backup-now.ts', ['enrollment'], env);
    assert.equal(backedUp.status, 0, backedUp.stderr);
    const before = digest(db);
    const verified = await runBin('verify-backup.ts', ['enrollment'], env);
    assert.equal(verified.status, 0, verified.stderr);
    assert.match(verified.stdout, /integrity ok, rules hold; .*enrollments \d+/);
    assert.equal(digest(db), before);
  });

  it('refuse a restore without --yes (exit 2) and over a running formation (exit 1)', async () => {
    for (const name of ['restore-enrollment.ts', 'restore-users.ts']) {
      const run = await runBin(name, [], env);
      assert.equal(run.status, 2, `${name}: ${run.stderr}`);
      assert.match(run.stderr, /--yes/);
    }
    const port = Number(env.BASE_PORT);
    const servers: Server[] = await Promise.all([port, port + 100, port + 200].map((at) => new Promise<Server>((resolve) => { const server = createServer((socket) => socket.destroy()).listen(at, '127.0.0.1', () => resolve(server)); })));
    try {
      const before = digest(db);
      const enrollment = await runBin('restore-enrollment.ts', ['--yes'], env);
      assert.equal(enrollment.status, 1, enrollment.stderr);
      assert.match(enrollment.stderr, /the formation runs .*stop it first/);
      const users = await runBin('restore-users.ts', ['--yes'], env);
      assert.equal(users.status, 1, users.stderr);
      assert.match(users.stderr, /the formation runs .*--while-running/);
      assert.equal(digest(db), before);
    } finally {
      for (const server of servers) server.close();
    }
  });

  it('name a corrupt users snapshot, and restore nothing from it', async () => {
    const snapshots = path.join(dir, 'backups/users');
    await mkdir(snapshots, { recursive: true });
    const corrupt = path.join(snapshots, `users-${stamp(new Date())}.db`);
    writeFileSync(corrupt, 'SQLite format 3\0'.padEnd(8192, 'x'));
    for (const [name, args] of [['verify-backup.ts', ['users']], ['restore-users.ts', ['--yes']]] as const) {
      const run = await runBin(name, [...args], env);
      assert.equal(run.status, 1, `${name}: ${run.stdout}`);
      assert.match(run.stderr, new RegExp(corrupt.replaceAll('.', '\\.')), name);
    }
    assert.ok(!readdirSync(dir).includes('litefs'), 'a LiteFS primary was started for a corrupt snapshot');
    await rm(corrupt);
  });

  it('refuse a corrupt Litestream replica file: the error says so, and the database is not replaced', async () => {
    const snapshotDir = path.join(dir, 'backups/enrollment/ltx/9');
    const [file] = readdirSync(snapshotDir);
    const bytes = readFileSync(path.join(snapshotDir, file));
    bytes.fill(0x55, 200, 4000);
    writeFileSync(path.join(snapshotDir, file), bytes);
    const before = digest(db);
    const run = await runBin('restore-enrollment.ts', ['--yes'], env);
    assert.equal(run.status, 1, run.stdout);
    assert.match(run.stderr, /nothing was replaced/);
    assert.equal(digest(db), before);
    assert.deepEqual(readdirSync(dir).filter((name) => name.includes('restoring')), [], 'a partial restore was left behind');
  });

  it('keep the newest snapshots, then one an hour, then one a day', async () => {
    const thinned = path.join(dir, 'thinned');
    await mkdir(thinned);
    const now = new Date('2026-12-03T12:00:30.000Z');
    // One every 10 minutes for three days.
    for (let minutes = 0; minutes < 3 * 24 * 60; minutes += 10) writeFileSync(path.join(thinned, `users-${stamp(new Date(now.getTime() - minutes * 60_000))}.db`), '');
    await thin(thinned, { recent: 3, hourly: 5, daily: 2 }, now);
    const kept = (await listSnapshots(thinned)).map((snapshot) => snapshot.time.toISOString());
    assert.deepEqual(kept, [
      '2026-12-01T23:50:30.000Z', '2026-12-02T23:50:30.000Z', // the newest of each of the last 2 days
      '2026-12-03T07:50:30.000Z', '2026-12-03T08:50:30.000Z', '2026-12-03T09:50:30.000Z', '2026-12-03T10:50:30.000Z', // of each of the last 5 hours
      '2026-12-03T11:40:30.000Z', '2026-12-03T11:50:30.000Z', '2026-12-03T12:00:30.000Z', // the newest 3
    ]);
  });
});

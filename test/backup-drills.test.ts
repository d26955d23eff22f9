// The two drills of "Backups and restore", on the real formation (Foreman, LiteFS, Litestream, the
// gateway) with the bin/ commands an operator would type:
// 1. point in time: enrollments, a noted time T, a section removed and students dropped after it;
//    stop, restore to T, start: exactly the enrollments of T, every rule holds, and served;
// 2. lost disk: the enrollment database and every LiteFS node's data deleted; restore both from
//    the backups, start: every account of the last users snapshot logs in, and every acknowledged
//    enrollment that Litestream had shipped is there; then a users restore into the running
//    cluster, which the secondaries follow.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Database } from '../lib/db.ts';
import { DEV_PASSWORD } from '../lib/roster.ts';
import { checkEnrollmentRules } from '../lib/rules.ts';
import { backupSettingsIn, runBin } from './backup-formation.ts';
import { startFormation, type Formation } from './formation.ts';
import { call, tempDir } from '../harness/support.ts';

async function token(formation: Formation, username: string, password = DEV_PASSWORD): Promise<string> {
  const reply = await call(`${formation.gateway}/login`, { body: { username, password } });
  assert.equal(reply.status, 200, `${username} cannot log in: ${JSON.stringify(reply.body)}`);
  return reply.body.access_token;
}

async function enrollments(file: string): Promise<string[]> {
  const db = await Database.open(file, { readonly: true });
  try {
    const rows = await db.all<{ section_id: number; student: string }>('SELECT section_id, student FROM enrollments ORDER BY section_id, student');
    return rows.map((row) => `${row.section_id}:${row.student}`);
  } finally {
    await db.close();
  }
}

// Sections of the catalogue with a seat free and nobody waiting: a student enrolls at once.
async function openSections(formation: Formation, bearer: string): Promise<number[]> {
  const { classes } = (await call(`${formation.gateway}/classes`, { token: bearer })).body as { classes: { sections: { id: number; seats_left: number; waitlist_length: number }[] }[] };
  return classes.flatMap((one) => one.sections).filter((section) => section.seats_left > 2 && section.waitlist_length === 0).map((section) => section.id);
}

async function enroll(formation: Formation, bearer: string, sectionId: number): Promise<void> {
  const reply = await call(`${formation.gateway}/me/enrollments`, { token: bearer, body: { section_id: sectionId } });
  assert.equal(reply.status, 201, JSON.stringify(reply.body));
}

// Until Litestream's replica holds a commit made at `time` or later (bin/list-backups.ts).
async function untilShipped(env: NodeJS.ProcessEnv, time: Date): Promise<void> {
  for (const deadline = Date.now() + 15_000; ; await sleep(250)) {
    const listed = await runBin('list-backups.ts', ['enrollment'], env);
    const latest = /to (\S+Z) \(/.exec(listed.stdout)?.[1];
    if (latest && new Date(latest) >= time) return;
    assert.ok(Date.now() < deadline, `Litestream shipped nothing after ${time.toISOString()}: ${listed.stdout}${listed.stderr}`);
  }
}

describe('backup drills on the real formation', function () {
  this.timeout(240_000);
  let formation: Formation | undefined;
  let dir: string;

  afterEach(async () => {
    await formation?.stop();
    formation = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('point in time: a restore to T brings back every enrollment of T and nothing after, and the service serves it', async () => {
    dir = await tempDir('drill-time');
    const settings = backupSettingsIn(dir);
    formation = await startFormation(settings);
    const env = formation.env;
    const students = ['student101', 'student102', 'student103', 'student104'];
    const bearers = await Promise.all(students.map((student) => token(formation!, student)));
    const [first, second] = await openSections(formation, bearers[0]);
    for (const bearer of bearers) for (const sectionId of [first, second]) await enroll(formation, bearer, sectionId);
    await untilShipped(env, new Date());
    const atT = await enrollments(settings.ENROLLMENT_DB);
    const T = new Date();
    await sleep(1500);

    // After T: a section removed, students dropped, a newcomer enrolled.
    const registrar = await token(formation, 'registrar');
    assert.equal((await call(`${formation.gateway}/sections/${first}`, { method: 'DELETE', token: registrar })).status, 204);
    for (const bearer of bearers.slice(0, 2)) assert.equal((await call(`${formation.gateway}/me/enrollments/${second}`, { method: 'DELETE', token: bearer })).status, 204);
    await enroll(formation, await token(formation, 'student105'), second);
    const after = await enrollments(settings.ENROLLMENT_DB);
    assert.notDeepEqual(after, atT);
    assert.match((await runBin('backup-now.ts', ['enrollment'], env)).stdout, /synced/);

    const refused = await runBin('restore-enrollment.ts', ['--yes', T.toISOString()], env);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(refused.stderr, /the formation runs .*stop it first/);
    const verified = await runBin('verify-backup.ts', ['enrollment', T.toISOString()], env);
    assert.equal(verified.status, 0, verified.stderr);
    assert.match(verified.stdout, /integrity ok, rules hold/);

    await formation.stop();
    formation = undefined;
    const tooEarly = await runBin('restore-enrollment.ts', ['--yes', '2000-01-01T00:00:00Z'], env);
    assert.equal(tooEarly.status, 1);
    assert.match(tooEarly.stderr, /cannot restore to 2000-01-01T00:00:00.000Z: restore points of .* run from \S+ to \S+/);
    const restored = await runBin('restore-enrollment.ts', ['--yes', T.toISOString()], env);
    assert.equal(restored.status, 0, restored.stderr);
    assert.match(restored.stdout, /kept|are in/);

    assert.deepEqual(await enrollments(settings.ENROLLMENT_DB), atT, 'the restored enrollments are not those of T');
    const db = await Database.open(settings.ENROLLMENT_DB, { readonly: true });
    assert.deepEqual(await checkEnrollmentRules(db).finally(() => db.close()), []);

    formation = await startFormation(settings);
    const served = await call(`${formation.gateway}/me/enrollments`, { token: await token(formation, 'student101') });
    assert.deepEqual(served.body.enrollments.map((row: { section_id: number }) => row.section_id).sort(), [first, second].sort());
    assert.equal((await call(`${formation.gateway}/sections/${first}`, { token: bearers[0] })).status, 200, 'the removed section is offered again');
  });

  it('lost disk: both databases come back from the backups alone', async () => {
    dir = await tempDir('drill-disk');
    const settings = backupSettingsIn(dir, { USERS_BACKUP_INTERVAL_SECONDS: '2' });
    formation = await startFormation(settings);
    const env = formation.env;
    const accounts = Array.from({ length: 5 }, (_, index) => `drill${index}-${Date.now() % 100000}`);
    for (const username of accounts) {
      const reply = await call(`${formation.gateway}/users`, { body: { username, password: 'drill password', roles: ['Student'] } });
      assert.equal(reply.status, 201, JSON.stringify(reply.body));
    }
    const registered = new Date();
    const acknowledged: string[] = [];
    const bearers = await Promise.all(accounts.map((username) => token(formation!, username, 'drill password')));
    const [sectionId] = await openSections(formation, bearers[0]);
    for (const [index, bearer] of bearers.entries()) {
      await enroll(formation, bearer, sectionId);
      acknowledged.push(`${sectionId}:${accounts[index]}`);
    }
    await untilShipped(env, new Date());
    // The schedule (every 2 s here) takes a snapshot holding the new accounts.
    for (const deadline = Date.now() + 20_000; ; await sleep(500)) {
      const listed = (await runBin('list-backups.ts', ['users'], env)).stdout;
      if ([...listed.matchAll(/^ {2}(\S+Z) /gm)].some((match) => new Date(match[1]) > registered)) break;
      assert.ok(Date.now() < deadline, `no scheduled users snapshot after the registrations:\n${listed}\n${formation!.log.filter((line) => line.startsWith("users-backup")).join("\n")}`);
    }

    // The disk is lost: the formation is gone (stop also wipes every LiteFS node), and the enrollment database with it.
    await formation.stop();
    formation = undefined;
    for (const file of ['enrollment.db', 'enrollment.db-wal', 'enrollment.db-shm', 'enrollment.db-litestream']) await rm(path.join(dir, file), { recursive: true, force: true });

    const users = await runBin('restore-users.ts', ['--yes'], env);
    assert.equal(users.status, 0, users.stderr + users.stdout);
    const enrollment = await runBin('restore-enrollment.ts', ['--yes'], env);
    assert.equal(enrollment.status, 0, enrollment.stderr + enrollment.stdout);

    formation = await startFormation(settings);
    for (const username of accounts) await token(formation, username, 'drill password');
    const present = new Set(await enrollments(settings.ENROLLMENT_DB));
    assert.deepEqual(acknowledged.filter((row) => !present.has(row)), [], 'acknowledged enrollments lost');

    // A users restore into the running cluster: the account made since the snapshot is gone from the secondaries too.
    const late = { username: `late-${accounts[0]}`, password: 'drill password', roles: ['Student'] };
    assert.equal((await call(`${formation.gateway}/users`, { body: late })).status, 201);
    await token(formation, late.username, late.password);
    const snapshot = /^restoring (\S+):/m.exec(users.stdout)![1]; // the schedule has taken newer ones, holding the late account
    const live = await runBin('restore-users.ts', ['--yes', '--while-running', snapshot], formation.env);
    assert.equal(live.status, 0, live.stderr + live.stdout);
    assert.match(live.stdout, /the database it replaces is kept in \S+replaced\/users-/);
    for (let round = 0; round < 4; round++) assert.equal((await call(`${formation.gateway}/login`, { body: { username: late.username, password: late.password } })).status, 401, 'a login read a replica that kept the replaced database');
    for (const username of accounts) await token(formation, username, 'drill password');
  });
});

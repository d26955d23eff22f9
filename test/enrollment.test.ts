// The enrollment service over HTTP, in the test's process, on a temporary database seeded by
// bin/seed-enrollment.ts, with tokens signed by a throw-away key pair exactly as the users service
// signs them (and, once, as a real process under Deno).
// Every refusal is also checked to have changed nothing in the database.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { promisify } from 'node:util';
import { generateKeyPair } from 'jose';
import { ROOT } from '../lib/config.ts';
import { Database } from '../lib/db.ts';
import { INSTRUCTORS, STUDENTS } from '../lib/roster.ts';
import { enrollmentInProcess, type LocalService } from './in-process.ts';
import { call, makeTestKeys, startService, tempDir, type Reply, type TestKeys } from '../harness/support.ts';

const run = promisify(execFile);

describe('enrollment service', function () {
  let dir: string;
  let keys: TestKeys;
  let dbFile: string;
  let env: Record<string, string>;
  let service: LocalService;
  let db: Database;
  let seedOutput: string;

  before(async function () {
    dir = await tempDir('enrollment');
    keys = await makeTestKeys(dir);
    dbFile = path.join(dir, 'enrollment.db');
    env = { ENROLLMENT_DB: dbFile, JWKS_PUBLIC: keys.publicFile };
    seedOutput = await seed();
    service = await enrollmentInProcess(dbFile, keys);
    db = await Database.open(dbFile, { readonly: true });
  });

  after(async function () {
    await service?.stop();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function seed(...args: string[]): Promise<string> {
    const { stdout } = await run(process.execPath, ['bin/seed-enrollment.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
    });
    return stdout.trim();
  }

  const token = (username: string, ...roles: string[]) => keys.accessToken(username, roles);
  const registrar = () => token('registrar', 'Registrar');
  const student = (username: string) => token(username, 'Student');
  const instructor = (username: string) => token(username, 'Instructor');

  async function api(method: string, route: string, bearer?: string | Promise<string>, body?: unknown): Promise<Reply> {
    return call(`${service.url}${route}`, { method, token: await bearer, body });
  }

  function problem(reply: Reply, status: number, detail?: RegExp): void {
    assert.equal(reply.status, status, JSON.stringify(reply.body));
    assert.match(reply.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(reply.body.status, status);
    if (detail) assert.match(reply.body.detail, detail);
  }

  async function snapshot() {
    const tables: Record<string, unknown[]> = {};
    for (const table of ['classes', 'sections', 'enrollments', 'waitlist', 'drops', 'settings']) {
      tables[table] = await db.all(`SELECT * FROM ${table} ORDER BY rowid`);
    }
    return tables;
  }

  // Runs a request that must be refused, and checks that the database is exactly as before.
  async function refused(status: number, detail: RegExp | undefined, request: () => Promise<Reply>): Promise<Reply> {
    const before = await snapshot();
    const reply = await request();
    problem(reply, status, detail);
    assert.deepEqual(await snapshot(), before, 'a refused request changed the database');
    return reply;
  }

  // A fresh class with one section, so that each test owns the rows it changes.
  let made = 0;
  async function newSection(capacity: number, teacher = 'prof.test'): Promise<number> {
    made++;
    const course = await api('POST', '/classes', registrar(), { department: 'TEST', course_code: `T${made}`, title: `Test class ${made}` });
    assert.equal(course.status, 201, JSON.stringify(course.body));
    const section = await api('POST', '/sections', registrar(), { class_id: course.body.id, section_number: 1, capacity, instructor: teacher });
    assert.equal(section.status, 201, JSON.stringify(section.body));
    return section.body.id;
  }

  let people = 0;
  const newStudents = (count: number) => Array.from({ length: count }, () => `tstudent${++people}`);

  async function enroll(username: string, sectionId: number): Promise<Reply> {
    return api('POST', '/me/enrollments', student(username), { section_id: sectionId });
  }

  async function waitlistOf(sectionId: number): Promise<string[]> {
    const rows = await db.all<{ student: string }>('SELECT student FROM waitlist WHERE section_id = ? ORDER BY position', [sectionId]);
    return rows.map((row) => row.student);
  }

  async function enrolledIn(sectionId: number): Promise<string[]> {
    const rows = await db.all<{ student: string }>('SELECT student FROM enrollments WHERE section_id = ? ORDER BY student', [sectionId]);
    return rows.map((row) => row.student);
  }

  describe('the seed', function () {
    it('seeds a realistic catalogue with the roster\'s usernames, and seeding again changes nothing', async function () {
      assert.match(seedOutput, /^enrollment: seeded: 18 classes, 32 sections, 12 instructors, 479 enrollments of 100 students, 33 waitlisted/);
      const before = await snapshot();
      assert.match(await seed(), /already seeded, nothing changed/);
      assert.deepEqual(await snapshot(), before);
      const strangers = await db.all(
        `SELECT instructor AS name FROM sections WHERE instructor NOT IN (${INSTRUCTORS.map(() => '?').join(',')})
         UNION SELECT student FROM enrollments WHERE student NOT IN (${STUDENTS.map(() => '?').join(',')})`,
        [...INSTRUCTORS, ...STUDENTS],
      );
      assert.deepEqual(strangers, []);
      assert.equal((await db.all('SELECT DISTINCT instructor FROM sections')).length, 12);
    });

    it('lists every class with its sections, seats left and waitlist length, to any role', async function () {
      for (const bearer of [student('student101'), instructor('prof.chen'), registrar()]) {
        const reply = await api('GET', '/classes', bearer);
        assert.equal(reply.status, 200);
        assert.equal(reply.body.classes.length, 18);
        assert.equal(reply.body.classes.flatMap((c: { sections: unknown[] }) => c.sections).length, 32);
      }
      const { body } = await api('GET', '/classes', student('student101'));
      const web = body.classes.find((c: { course_code: string }) => c.course_code === '449');
      assert.deepEqual(
        { ...web, sections: undefined },
        { id: web.id, department: 'CPSC', course_code: '449', title: 'Web Back-End Engineering', sections: undefined },
      );
      assert.deepEqual(web.sections, [
        { id: 24, section_number: 1, instructor: 'prof.chen', capacity: 30, enrolled: 30, seats_left: 0, waitlist_length: 15 },
        { id: 25, section_number: 2, instructor: 'prof.lindqvist', capacity: 30, enrolled: 30, seats_left: 0, waitlist_length: 3 },
        { id: 26, section_number: 3, instructor: 'prof.ito', capacity: 30, enrolled: 11, seats_left: 19, waitlist_length: 0 },
      ]);
      const one = await api('GET', `/classes/${web.id}`, student('student101'));
      assert.deepEqual(one.body, web);
      const section = await api('GET', '/sections/26', student('student101'));
      assert.equal(section.body.title, 'Web Back-End Engineering');
      assert.equal(section.body.seats_left, 19);
      problem(await api('GET', '/classes/999', student('student101')), 404, /no class 999/);
      problem(await api('GET', '/sections/999', student('student101')), 404, /no section 999/);
      problem(await api('GET', '/classes/abc', student('student101')), 422, /class id/);
    });

    it('lets every rule be tried at once, as the README walks through it', async function () {
      let reply = await enroll('student101', 26);
      assert.deepEqual([reply.status, reply.body], [201, { section_id: 26, status: 'enrolled' }]);
      reply = await enroll('student101', 25);
      assert.deepEqual([reply.status, reply.body], [202, { section_id: 25, status: 'waitlisted', position: 4 }]);
      await refused(409, /waitlist already holds 15/, () => enroll('student101', 24));
      await refused(409, /already on 3 waitlists/, () => enroll('student120', 25));
      assert.equal((await enroll('student102', 16)).status, 201); // the last seat of CPSC 332-2
      reply = await enroll('student103', 16);
      assert.deepEqual(reply.body, { section_id: 16, status: 'waitlisted', position: 1 });
      assert.deepEqual(await waitlistOf(25), ['student086', 'student087', 'student088', 'student101']);
      assert.equal((await api('DELETE', '/me/enrollments/25', student('student031'))).status, 204);
      assert.equal((await api('DELETE', '/sections/25/students/student032', instructor('prof.lindqvist'))).status, 204);
      await refused(403, /taught by prof.lindqvist/, () => api('GET', '/sections/25/students', instructor('prof.chen')));
      assert.deepEqual(await waitlistOf(25), ['student088', 'student101']);
      const enrolled = await enrolledIn(25);
      assert.ok(enrolled.includes('student086') && enrolled.includes('student087') && enrolled.length === 30);
    });
  });

  describe('who is calling', function () {
    it('refuses a request without a valid token with 401, whatever identity headers it carries', async function () {
      const other = await generateKeyPair('RS256');
      const now = Math.floor(Date.now() / 1000);
      const bad: [string, string | undefined][] = [
        ['no token', undefined],
        ['signed by another key', await keys.sign({ sub: 'student101', roles: ['Student'] }, { key: other.privateKey })],
        ['expired', await keys.sign({ sub: 'student101', roles: ['Student'], iat: now - 7200, exp: now - 3600 })],
        ['no exp', await keys.sign({ sub: 'student101', roles: ['Student'], exp: undefined })],
        ['wrong audience', await keys.sign({ sub: 'student101', roles: ['Student'], aud: 'someone-else' })],
        ['wrong issuer', await keys.sign({ sub: 'student101', roles: ['Student'], iss: 'someone-else' })],
        ['alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'registrar', roles: ['Registrar'], aud: 'enrollment-gateway', iss: 'enrollment-gateway/users', exp: now + 600 })).toString('base64url')}.`],
      ];
      for (const [why, bearer] of bad) {
        for (const [method, route, body] of [
          ['GET', '/classes'],
          ['POST', '/me/enrollments', { section_id: 26 }],
          ['DELETE', '/sections/26'],
          ['PUT', '/auto-enrollment', { frozen: true }],
        ] as const) {
          const reply = await refused(401, undefined, () =>
            call(`${service.url}${route}`, { method, body, token: bearer, headers: { 'x-user': 'registrar', 'x-roles': 'Registrar' } }),
          );
          assert.ok(reply.body.detail, `${why}: ${method} ${route}`);
        }
      }
    });

    it('refuses a wrong role with 403 and takes the caller from the token only', async function () {
      await refused(403, /Registrar/, () => api('POST', '/classes', student('student101'), { department: 'X', course_code: '1', title: 'x' }));
      await refused(403, /Registrar/, () => api('PUT', '/auto-enrollment', instructor('prof.chen'), { frozen: true }));
      await refused(403, /Student/, () => api('POST', '/me/enrollments', instructor('prof.chen'), { section_id: 26 }));
      await refused(403, /Student/, () => api('GET', '/me/waitlist', registrar()));
      await refused(403, /Instructor/, () => api('GET', '/me/sections', student('student101')));
      await refused(403, /Instructor or Registrar/, () => api('GET', '/sections/26/students', student('student101')));
      await refused(403, /Instructor or Registrar/, () => api('DELETE', '/sections/26/students/student001', student('student001')));
      // A body or header naming somebody else changes nothing about who acts.
      await refused(422, /unknown field\(s\): student/, () => api('POST', '/me/enrollments', student('student104'), { section_id: 26, student: 'student105' }));
      const reply = await call(`${service.url}/me/enrollments`, { token: await student('student104'), headers: { 'x-user': 'student001' } });
      assert.deepEqual(reply.body, { enrollments: [] });
    });

    it('logs one line per request with the caller', async function () {
      await api('GET', '/me/enrollments', student('student119'));
      const line = service.logs.find((entry) => entry.startsWith('GET /me/enrollments 200') && entry.includes('user=student119'));
      assert.match(line ?? '', /^GET \/me\/enrollments 200 \d+ms user=student119$/);
    });
  });

  describe('students', function () {
    it('enroll in a free seat (201), see it, and may not enroll twice (409)', async function () {
      const section = await newSection(2, 'prof.alvarez');
      const [alice] = newStudents(1);
      const reply = await enroll(alice, section);
      assert.deepEqual([reply.status, reply.body], [201, { section_id: section, status: 'enrolled' }]);
      const mine = await api('GET', '/me/enrollments', student(alice));
      assert.equal(mine.status, 200);
      assert.equal(mine.body.enrollments.length, 1);
      assert.deepEqual({ ...mine.body.enrollments[0], enrolled_at: undefined }, {
        section_id: section, class_id: mine.body.enrollments[0].class_id, department: 'TEST', course_code: `T${made}`,
        title: `Test class ${made}`, section_number: 1, instructor: 'prof.alvarez', enrolled_at: undefined,
      });
      await refused(409, /already enrolled in section/, () => enroll(alice, section));
    });

    it('are waitlisted when the section is full (202), see their position, and may not join twice (409)', async function () {
      const section = await newSection(1);
      const [first, second, third] = newStudents(3);
      await enroll(first, section);
      let reply = await enroll(second, section);
      assert.deepEqual([reply.status, reply.body], [202, { section_id: section, status: 'waitlisted', position: 1 }]);
      reply = await enroll(third, section);
      assert.deepEqual([reply.status, reply.body], [202, { section_id: section, status: 'waitlisted', position: 2 }]);
      const waiting = await api('GET', '/me/waitlist', student(third));
      assert.equal(waiting.body.waitlist.length, 1);
      assert.equal(waiting.body.waitlist[0].section_id, section);
      assert.equal(waiting.body.waitlist[0].position, 2);
      assert.equal(waiting.body.waitlist[0].waitlist_length, 2);
      await refused(409, /already on the waitlist of section \d+, at position 2/, () => enroll(third, section));
    });

    it('are refused when the waitlist holds 15 (409)', async function () {
      const section = await newSection(1);
      const [seated, ...line] = newStudents(17);
      await enroll(seated, section);
      for (const [index, name] of line.slice(0, 15).entries()) {
        assert.equal((await enroll(name, section)).body.position, index + 1);
      }
      await refused(409, /full and its waitlist already holds 15 students/, () => enroll(line[15], section));
    });

    it('are refused a fourth waitlist (409), but may still enroll where a seat is free', async function () {
      const full = [await newSection(1), await newSection(1), await newSection(1), await newSection(1)];
      const [seated, waiter] = newStudents(2);
      for (const section of full) await enroll(seated, section);
      for (const section of full.slice(0, 3)) assert.equal((await enroll(waiter, section)).status, 202);
      await refused(409, /already on 3 waitlists, the most allowed/, () => enroll(waiter, full[3]));
      assert.equal((await enroll(waiter, await newSection(1))).status, 201);
    });

    it('get 404 for an unknown section and 422/400/415 for malformed input, changing nothing', async function () {
      const [someone] = newStudents(1);
      await refused(404, /no section 99999/, () => enroll(someone, 99999));
      await refused(422, /section_id must be a whole number/, () => api('POST', '/me/enrollments', student(someone), { section_id: '26' }));
      await refused(422, /section_id must be a whole number/, () => api('POST', '/me/enrollments', student(someone), { section_id: 2.5 }));
      await refused(422, /missing field\(s\): section_id/, () => api('POST', '/me/enrollments', student(someone), {}));
      await refused(422, /JSON object/, () => api('POST', '/me/enrollments', student(someone), [26]));
      await refused(400, /not valid JSON/, async () =>
        call(`${service.url}/me/enrollments`, { method: 'POST', token: await student(someone), raw: '{"section_id": 2' }),
      );
      await refused(415, /application\/json/, async () =>
        call(`${service.url}/me/enrollments`, { method: 'POST', token: await student(someone), raw: 'section_id=26', headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
      );
      await refused(413, /larger than/, () => api('POST', '/me/enrollments', student(someone), { section_id: 26, pad: 'x'.repeat(20_000) }));
      await refused(422, /section id must be a positive whole number/, () => api('DELETE', '/me/enrollments/0', student(someone)));
      await refused(422, /section id/, () => api('DELETE', '/me/waitlist/x1', student(someone)));
      await refused(404, /no section 99999/, () => api('DELETE', '/me/enrollments/99999', student(someone)));
      await refused(404, /no section 99999/, () => api('DELETE', '/me/waitlist/99999', student(someone)));
      await refused(404, /no route/, () => api('GET', '/me/nothing', student(someone)));
      await refused(405, undefined, () => api('PATCH', '/me/enrollments', student(someone), {}));
    });

    it('drop (204): the first on the waitlist is enrolled and the rest move up', async function () {
      const section = await newSection(2);
      const [a, b, w1, w2, w3] = newStudents(5);
      for (const name of [a, b, w1, w2, w3]) await enroll(name, section);
      assert.equal((await api('DELETE', `/me/enrollments/${section}`, student(a))).status, 204);
      assert.deepEqual(await enrolledIn(section), [b, w1].sort());
      assert.deepEqual(await waitlistOf(section), [w2, w3]);
      assert.deepEqual((await api('GET', '/me/waitlist', student(w3))).body.waitlist.map((row: { position: number }) => row.position), [1 + 1]);
      assert.deepEqual((await api('GET', '/me/enrollments', student(w1))).body.enrollments.map((row: { section_id: number }) => row.section_id), [section]);
      assert.deepEqual((await api('GET', '/me/enrollments', student(a))).body.enrollments, []);
      const dropped = await api('GET', `/sections/${section}/dropped`, registrar());
      assert.equal(dropped.body.dropped.length, 1);
      assert.deepEqual({ ...dropped.body.dropped[0], dropped_at: undefined }, { username: a, dropped_by: a, reason: 'self', promoted: w1, dropped_at: undefined });
      assert.match(dropped.body.dropped[0].dropped_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      await refused(404, /you are not enrolled in section/, () => api('DELETE', `/me/enrollments/${section}`, student(a)));
      await refused(404, /you are not enrolled in section/, () => api('DELETE', `/me/enrollments/${section}`, student(w2)));
    });

    it('drop from a section nobody waits for: the seat simply becomes free', async function () {
      const section = await newSection(2);
      const [a, b] = newStudents(2);
      await enroll(a, section);
      await enroll(b, section);
      assert.equal((await api('DELETE', `/me/enrollments/${section}`, student(a))).status, 204);
      assert.equal((await api('GET', `/sections/${section}`, student(a))).body.seats_left, 1);
    });

    it('leave a waitlist (204): positions behind close up; leaving twice is 404', async function () {
      const section = await newSection(1);
      const [seated, w1, w2, w3, w4] = newStudents(5);
      for (const name of [seated, w1, w2, w3, w4]) await enroll(name, section);
      assert.equal((await api('DELETE', `/me/waitlist/${section}`, student(w2))).status, 204);
      assert.deepEqual(await waitlistOf(section), [w1, w3, w4]);
      const positions = await db.all<{ position: number }>('SELECT position FROM waitlist WHERE section_id = ? ORDER BY position', [section]);
      assert.deepEqual(positions.map((row) => row.position), [1, 2, 3]);
      assert.deepEqual((await api('GET', '/me/waitlist', student(w2))).body.waitlist, []);
      await refused(404, /not on the waitlist of section/, () => api('DELETE', `/me/waitlist/${section}`, student(w2)));
      await refused(404, /not on the waitlist of section/, () => api('DELETE', `/me/waitlist/${section}`, student(seated)));
      // Having left, the student may join again, at the back.
      assert.equal((await enroll(w2, section)).body.position, 4);
    });
  });

  describe('instructors', function () {
    it('see their own sections with counts, and only theirs', async function () {
      const reply = await api('GET', '/me/sections', instructor('prof.lindqvist'));
      assert.equal(reply.status, 200);
      assert.deepEqual(
        reply.body.sections.map((s: { department: string; course_code: string; section_number: number }) => `${s.department} ${s.course_code}-${s.section_number}`),
        ['CPSC 332-2', 'CPSC 449-2', 'CPSC 474-1'],
      );
      const section = reply.body.sections[0];
      assert.equal(section.seats_left, section.capacity - section.enrolled);
      assert.ok('waitlist_length' in section && 'title' in section);
      assert.deepEqual((await api('GET', '/me/sections', instructor('prof.nobody'))).body, { sections: [] });
    });

    it('read enrollment, drops and waitlist of their sections; another instructor gets 403, the Registrar gets them', async function () {
      const section = await newSection(1, 'prof.brooks');
      const [a, b] = newStudents(2);
      await enroll(a, section);
      await enroll(b, section);
      for (const bearer of [instructor('prof.brooks'), registrar()]) {
        assert.deepEqual((await api('GET', `/sections/${section}/students`, bearer)).body.students.map((s: { username: string }) => s.username), [a]);
        const waitlist = await api('GET', `/sections/${section}/waitlist`, bearer);
        assert.deepEqual(waitlist.body.waitlist.map(({ position, username }: { position: number; username: string }) => ({ position, username })), [{ position: 1, username: b }]);
        assert.deepEqual((await api('GET', `/sections/${section}/dropped`, bearer)).body, { section_id: section, dropped: [] });
      }
      for (const route of ['students', 'waitlist', 'dropped']) {
        await refused(403, /taught by prof.brooks, not by you/, () => api('GET', `/sections/${section}/${route}`, instructor('prof.chen')));
        await refused(404, /no section 99999/, () => api('GET', `/sections/99999/${route}`, instructor('prof.brooks')));
      }
    });

    it('drop a student administratively (204), which promotes the first on the waitlist', async function () {
      const section = await newSection(1, 'prof.dubois');
      const [a, w1, w2] = newStudents(3);
      for (const name of [a, w1, w2]) await enroll(name, section);
      await refused(403, /taught by prof.dubois/, () => api('DELETE', `/sections/${section}/students/${a}`, instructor('prof.evans')));
      await refused(404, new RegExp(`${w1} is not enrolled`), () => api('DELETE', `/sections/${section}/students/${w1}`, instructor('prof.dubois')));
      await refused(422, /username must/, () => api('DELETE', `/sections/${section}/students/bad%20name`, instructor('prof.dubois')));
      await refused(404, /no section 99999/, () => api('DELETE', `/sections/99999/students/${a}`, instructor('prof.dubois')));
      assert.equal((await api('DELETE', `/sections/${section}/students/${a.toUpperCase()}`, instructor('prof.dubois'))).status, 204);
      assert.deepEqual(await enrolledIn(section), [w1]);
      assert.deepEqual(await waitlistOf(section), [w2]);
      const dropped = (await api('GET', `/sections/${section}/dropped`, instructor('prof.dubois'))).body.dropped;
      assert.deepEqual(dropped.map(({ dropped_at, ...row }: { dropped_at: string }) => row), [
        { username: a, dropped_by: 'prof.dubois', reason: 'administrative', promoted: w1 },
      ]);
      // The Registrar may do it on any section.
      assert.equal((await api('DELETE', `/sections/${section}/students/${w1}`, registrar())).status, 204);
      assert.deepEqual(await enrolledIn(section), [w2]);
    });
  });

  describe('the Registrar', function () {
    it('adds a class (201 + Location); a duplicate is 409; bad input is 422', async function () {
      const reply = await api('POST', '/classes', registrar(), { department: 'cpsc', course_code: '499x', title: 'Independent Study' });
      assert.equal(reply.status, 201);
      assert.deepEqual(reply.body, { id: reply.body.id, department: 'CPSC', course_code: '499X', title: 'Independent Study', sections: [] });
      assert.equal(reply.headers.get('location'), `/classes/${reply.body.id}`);
      assert.equal((await api('GET', `/classes/${reply.body.id}`, student('student101'))).body.title, 'Independent Study');
      await refused(409, /CPSC 499X exists already/, () => api('POST', '/classes', registrar(), { department: 'CPSC', course_code: '499X', title: 'Again' }));
      await refused(409, /CPSC 449 exists already/, () => api('POST', '/classes', registrar(), { department: 'CPSC', course_code: '449', title: 'Web' }));
      await refused(422, /department/, () => api('POST', '/classes', registrar(), { department: 'C1', course_code: '1', title: 'x' }));
      await refused(422, /course_code/, () => api('POST', '/classes', registrar(), { department: 'CPSC', course_code: '4-49', title: 'x' }));
      await refused(422, /title must be 1 to 200/, () => api('POST', '/classes', registrar(), { department: 'CPSC', course_code: '1', title: '' }));
      await refused(422, /missing field\(s\): title/, () => api('POST', '/classes', registrar(), { department: 'CPSC', course_code: '1' }));
      await refused(422, /unknown field\(s\): units/, () => api('POST', '/classes', registrar(), { department: 'CPSC', course_code: '1', title: 'x', units: 3 }));
    });

    it('adds a section (201 + Location); a duplicate number is 409; capacity is 1..500; an unknown class is 404', async function () {
      const course = await api('POST', '/classes', registrar(), { department: 'MATH', course_code: '250A', title: 'Calculus II' });
      const body = { class_id: course.body.id, section_number: 1, capacity: 500, instructor: 'Prof.Garcia' };
      const reply = await api('POST', '/sections', registrar(), body);
      assert.equal(reply.status, 201);
      assert.equal(reply.headers.get('location'), `/sections/${reply.body.id}`);
      assert.deepEqual(reply.body, {
        id: reply.body.id, class_id: course.body.id, department: 'MATH', course_code: '250A', title: 'Calculus II',
        section_number: 1, instructor: 'prof.garcia', capacity: 500, enrolled: 0, waitlist_length: 0, seats_left: 500,
      });
      assert.deepEqual((await api('GET', reply.headers.get('location')!, student('student101'))).body, reply.body);
      await refused(409, /already has a section 1/, () => api('POST', '/sections', registrar(), body));
      await refused(422, /capacity must be a whole number from 1 to 500/, () => api('POST', '/sections', registrar(), { ...body, section_number: 2, capacity: 0 }));
      await refused(422, /capacity must be a whole number from 1 to 500/, () => api('POST', '/sections', registrar(), { ...body, section_number: 2, capacity: 501 }));
      await refused(422, /section_number/, () => api('POST', '/sections', registrar(), { ...body, section_number: 0 }));
      await refused(422, /instructor must/, () => api('POST', '/sections', registrar(), { ...body, section_number: 2, instructor: 42 }));
      await refused(404, /no class 99999/, () => api('POST', '/sections', registrar(), { ...body, class_id: 99999 }));
      await refused(403, /Registrar/, () => api('POST', '/sections', instructor('prof.garcia'), { ...body, section_number: 2 }));
    });

    it('changes a section\'s instructor (200): the new one is in charge, the old one is not', async function () {
      const section = await newSection(3, 'prof.fischer');
      const reply = await api('PUT', `/sections/${section}/instructor`, registrar(), { instructor: 'prof.ito' });
      assert.equal(reply.status, 200);
      assert.equal(reply.body.instructor, 'prof.ito');
      assert.equal((await api('GET', `/sections/${section}/students`, instructor('prof.ito'))).status, 200);
      await refused(403, /taught by prof.ito/, () => api('GET', `/sections/${section}/students`, instructor('prof.fischer')));
      await refused(404, /no section 99999/, () => api('PUT', '/sections/99999/instructor', registrar(), { instructor: 'prof.ito' }));
      await refused(422, /missing field\(s\): instructor/, () => api('PUT', `/sections/${section}/instructor`, registrar(), {}));
      await refused(403, /Registrar/, () => api('PUT', `/sections/${section}/instructor`, instructor('prof.ito'), { instructor: 'prof.ito' }));
    });

    it('removes a section (204): gone from the catalogue, enrollments kept as drops, waitlist cleared, no more enrolling', async function () {
      const section = await newSection(1, 'prof.hughes');
      const [a, w] = newStudents(2);
      await enroll(a, section);
      await enroll(w, section);
      await refused(403, /Registrar/, () => api('DELETE', `/sections/${section}`, instructor('prof.hughes')));
      assert.equal((await api('DELETE', `/sections/${section}`, registrar())).status, 204);
      const classes = (await api('GET', '/classes', student(a))).body.classes;
      assert.ok(!classes.some((c: { sections: { id: number }[] }) => c.sections.some((s) => s.id === section)));
      assert.deepEqual((await api('GET', '/me/enrollments', student(a))).body.enrollments, []);
      assert.deepEqual((await api('GET', '/me/waitlist', student(w))).body.waitlist, []);
      const dropped = (await api('GET', `/sections/${section}/dropped`, instructor('prof.hughes'))).body.dropped;
      assert.deepEqual(dropped.map(({ dropped_at, ...row }: { dropped_at: string }) => row), [
        { username: a, dropped_by: 'registrar', reason: 'section removed', promoted: null },
      ]);
      problem(await api('GET', `/sections/${section}`, student(a)), 404);
      await refused(409, /has been removed/, () => enroll(w, section));
      await refused(409, /has been removed/, () => api('DELETE', `/sections/${section}`, registrar()));
      await refused(409, /has been removed/, () => api('PUT', `/sections/${section}/instructor`, registrar(), { instructor: 'prof.ito' }));
      await refused(404, /no section 99999/, () => api('DELETE', '/sections/99999', registrar()));
      // Its number may be given to a new section.
      const { class_id } = (await db.get<{ class_id: number }>('SELECT class_id FROM sections WHERE id = ?', [section]))!;
      assert.equal((await api('POST', '/sections', registrar(), { class_id, section_number: 1, capacity: 5, instructor: 'prof.hughes' })).status, 201);
    });

    it('freezes automatic enrollment: drops leave the seat to the waitlist; unfreezing fills it', async function () {
      const section = await newSection(1);
      const [a, w1, w2, late] = newStudents(4);
      for (const name of [a, w1, w2]) await enroll(name, section);
      await refused(403, /Registrar/, () => api('PUT', '/auto-enrollment', student(a), { frozen: true }));
      await refused(422, /frozen must be true or false/, () => api('PUT', '/auto-enrollment', registrar(), { frozen: 'yes' }));
      await refused(422, /unknown field/, () => api('PUT', '/auto-enrollment', registrar(), { frozen: true, until: 'monday' }));
      let reply = await api('PUT', '/auto-enrollment', registrar(), { frozen: true });
      assert.deepEqual([reply.status, reply.body], [200, { frozen: true, promoted: 0 }]);
      try {
        assert.deepEqual((await api('GET', '/auto-enrollment', student(a))).body, { frozen: true });
        assert.equal((await api('DELETE', `/me/enrollments/${section}`, student(a))).status, 204);
        assert.deepEqual(await enrolledIn(section), []);
        assert.deepEqual(await waitlistOf(section), [w1, w2]);
        // The free seat belongs to those already waiting, not to a newcomer.
        assert.deepEqual((await enroll(late, section)).body, { section_id: section, status: 'waitlisted', position: 3 });
      } finally {
        reply = await api('PUT', '/auto-enrollment', registrar(), { frozen: false });
      }
      assert.equal(reply.status, 200);
      assert.equal(reply.body.frozen, false);
      assert.ok(reply.body.promoted >= 1);
      assert.deepEqual(await enrolledIn(section), [w1]);
      assert.deepEqual(await waitlistOf(section), [w2, late]);
      assert.deepEqual((await api('GET', '/auto-enrollment', instructor('prof.ito'))).body, { frozen: false });
    });
  });

  describe('under Deno', function () {
    it('the same file runs unchanged and answers', async function () {
      const deno = await startService('enrollment.ts', env, { runtime: 'deno', timeoutMs: 60_000 });
      try {
        const reply = await call(`${deno.url}/classes`, { token: await student('student101') });
        assert.equal(reply.status, 200);
        assert.ok(reply.body.classes.length >= 18);
        problem(await call(`${deno.url}/classes`), 401);
        assert.ok(deno.logs.some((line) => /^GET \/classes 200 \d+ms user=student101$/.test(line)));
      } finally {
        await deno.stop();
      }
    });
  });
});

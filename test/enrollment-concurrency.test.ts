// Three real enrollment processes on one database file, 200 requests at once on a few small
// sections, then the rules are checked in the database itself. Without one write transaction per
// change, this fails: seats are oversold, positions collide, promotions are lost or doubled.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { type Database } from '../lib/db.ts';
import { openEnrollmentDb } from '../lib/enrollment-db.ts';
import { checkEnrollmentRules } from '../lib/rules.ts';
import { call, makeTestKeys, startService, tempDir, type RunningService } from '../harness/support.ts';

// Small sections that many students want at once. Each seated student drops once and the last
// LEAVES waiting students of sections 2, 4 and 5 leave (4 drops cannot promote them first), while
// random students enroll anywhere, and drop and leave in the open sections 1-3. Sections 4 and 5
// start full with a waitlist that cannot run dry during the run (3 drops, 4 leaves, no random
// drops or leaves), so every drop there must promote exactly one student.
interface Fixture {
  number: number;
  capacity: number;
  seated: string[];
  waiting: string[];
  busy?: boolean;
}
const SECTIONS: Fixture[] = [
  { number: 1, capacity: 3, seated: [], waiting: [] },
  { number: 2, capacity: 4, seated: pool(19, 22), waiting: pool(33, 40) },
  { number: 3, capacity: 2, seated: pool(25, 26), waiting: [] },
  { number: 4, capacity: 3, seated: pool(27, 29), waiting: pool(1, 12), busy: true },
  { number: 5, capacity: 3, seated: pool(30, 32), waiting: pool(7, 18), busy: true }, // p007..p012 wait in both
];
const BUSY = SECTIONS.filter((section) => section.busy);
const OPEN = SECTIONS.filter((section) => !section.busy);
const STUDENTS = pool(1, 60);
const LEAVES = 4;
const REQUESTS = 200;

function pool(from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, index) => `p${String(from + index).padStart(3, '0')}`);
}

// A small seeded generator, so that the request mix is the same on every run (the interleaving is not).
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind = 'enroll' | 'drop' | 'leave';
interface Request {
  kind: Kind;
  student: string;
  section: number;
}

const ALLOWED: Record<Kind, number[]> = { enroll: [201, 202, 409], drop: [204, 404], leave: [204, 404] };

describe('enrollment under concurrency: three processes, one database', function () {
  this.timeout(120_000);
  let dir: string;
  let db: Database;
  const services: RunningService[] = [];
  let tokens: Map<string, string>;

  before(async function () {
    dir = await tempDir('enrollment-concurrency');
    const keys = await makeTestKeys(dir);
    const dbFile = path.join(dir, 'enrollment.db');
    db = await openEnrollmentDb({ db: dbFile, litefs: 'off' });
    await db.transaction(async (tx) => {
      const { lastID: classId } = await tx.run("INSERT INTO classes (department, course_code, title) VALUES ('TEST', '1', 'Contended')");
      for (const { number, capacity } of SECTIONS) {
        await tx.run("INSERT INTO sections (id, class_id, section_number, capacity, instructor) VALUES (?, ?, ?, ?, 'prof.test')", [number, classId, number, capacity]);
      }
      for (const { number, seated, waiting } of SECTIONS) {
        for (const student of seated) await tx.run('INSERT INTO enrollments (section_id, student) VALUES (?, ?)', [number, student]);
        for (const [index, student] of waiting.entries()) {
          await tx.run('INSERT INTO waitlist (section_id, student, position) VALUES (?, ?, ?)', [number, student, index + 1]);
        }
      }
    });
    const env = { ENROLLMENT_DB: dbFile, JWKS_PUBLIC: keys.publicFile };
    services.push(...(await Promise.all([1, 2, 3].map(() => startService('enrollment.ts', env)))));
    tokens = new Map(
      await Promise.all(
        STUDENTS.map(async (name) => [name, await keys.accessToken(name, ['Student'])] as const),
      ),
    );
  });

  after(async function () {
    await Promise.all(services.map((service) => service.stop()));
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function plan(): Request[] {
    const next = random(449);
    const any = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)];
    const requests: Request[] = [];
    for (const { number, seated, waiting } of SECTIONS) {
      for (const student of seated) requests.push({ kind: 'drop', student, section: number });
      for (const student of waiting.slice(-LEAVES)) requests.push({ kind: 'leave', student, section: number });
    }
    while (requests.length < REQUESTS) {
      const roll = next();
      const kind: Kind = roll < 0.7 ? 'enroll' : roll < 0.88 ? 'drop' : 'leave';
      const section = kind === 'enroll' ? any(SECTIONS).number : any(OPEN).number;
      requests.push({ kind, student: any(STUDENTS), section });
    }
    // Fisher-Yates, so that drops, leaves and enrolls are interleaved.
    for (let index = requests.length - 1; index > 0; index--) {
      const other = Math.floor(next() * (index + 1));
      [requests[index], requests[other]] = [requests[other], requests[index]];
    }
    return requests;
  }

  // Request i goes to process i mod 3, so all three contend for the same rows.
  function send(request: Request, index: number) {
    const { url } = services[index % services.length];
    const token = tokens.get(request.student)!;
    if (request.kind === 'enroll') return call(`${url}/me/enrollments`, { method: 'POST', token, body: { section_id: request.section } });
    const route = request.kind === 'drop' ? 'enrollments' : 'waitlist';
    return call(`${url}/me/${route}/${request.section}`, { method: 'DELETE', token });
  }

  it('keeps every rule under 200 concurrent enrolls, drops and leaves', async function () {
    const initial = new Map(SECTIONS.map(({ number, seated, waiting }) => [number, { enrolled: seated.length, waiting: waiting.length }]));
    const requests = plan();
    const replies = await Promise.all(requests.map(send));

    // Every answer is one the rules allow: no 500 from a lock, a constraint or a lost race.
    const tally = new Map<string, number>();
    for (const [index, reply] of replies.entries()) {
      const { kind, student, section } = requests[index];
      assert.ok(ALLOWED[kind].includes(reply.status), `${kind} ${student} ${section} -> ${reply.status} ${JSON.stringify(reply.body)}`);
      const key = `${section} ${kind} ${reply.status}`;
      tally.set(key, (tally.get(key) ?? 0) + 1);
    }
    const count = (section: number, kind: Kind, status: number) => tally.get(`${section} ${kind} ${status}`) ?? 0;

    const rows = await db.all<{ id: number; capacity: number; enrolled: number; waiting: number; promotions: number; drops: number }>(
      `SELECT id, capacity,
              (SELECT count(*) FROM enrollments WHERE section_id = sections.id) AS enrolled,
              (SELECT count(*) FROM waitlist WHERE section_id = sections.id) AS waiting,
              (SELECT count(promoted) FROM drops WHERE section_id = sections.id) AS promotions,
              (SELECT count(*) FROM drops WHERE section_id = sections.id) AS drops
       FROM sections ORDER BY id`,
    );
    for (const row of rows) {
      const start = initial.get(row.id)!;
      const where = `section ${row.id} ${JSON.stringify(row)} from ${JSON.stringify(start)}`;
      // Every change that was answered as done is in the database, and nothing else is.
      assert.equal(row.drops, count(row.id, 'drop', 204), `drops recorded: ${where}`);
      assert.equal(row.enrolled, start.enrolled + count(row.id, 'enroll', 201) + row.promotions - count(row.id, 'drop', 204), `enrollments add up: ${where}`);
      assert.equal(row.waiting, start.waiting + count(row.id, 'enroll', 202) - count(row.id, 'leave', 204) - row.promotions, `waitlist adds up: ${where}`);
    }

    assert.deepEqual(await checkEnrollmentRules(db), []);

    // In the busy sections the waitlist never ran dry, so each drop promoted exactly one student,
    // each a different one, who holds the seat now.
    for (const { number, seated } of BUSY) {
      const drops = await db.all<{ student: string; promoted: string | null }>('SELECT student, promoted FROM drops WHERE section_id = ? ORDER BY id', [number]);
      assert.deepEqual(drops.map((drop) => drop.student).sort(), [...seated].sort());
      const promoted = drops.map((drop) => drop.promoted);
      assert.ok(promoted.every((name) => name !== null), `a drop in section ${number} promoted nobody: ${JSON.stringify(drops)}`);
      assert.equal(new Set(promoted).size, promoted.length, `one student promoted twice in section ${number}`);
      const seats = (await db.all<{ student: string }>('SELECT student FROM enrollments WHERE section_id = ?', [number])).map((row) => row.student);
      assert.deepEqual(seats.sort(), (promoted as string[]).sort());
    }

    // The run did exercise every path in the open sections too (the fixture guarantees each one).
    for (const [kind, status] of [['enroll', 201], ['enroll', 202], ['enroll', 409], ['drop', 204], ['leave', 204]] as const) {
      assert.ok(OPEN.some(({ number }) => count(number, kind, status) > 0), `no ${kind} ${status} in the open sections`);
    }
  });
});

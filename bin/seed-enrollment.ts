// usage: bin/node bin/seed-enrollment.ts [--reset --yes [--while-running]]
//
// Creates the enrollment database (ENROLLMENT_DB, default var/enrollment.db) and seeds a catalogue
// in which every rule can be tried at once (the README lists the showcase sections). Deterministic:
// the same students land in the same sections every time. If the catalogue already has classes,
// nothing is changed.
//   --reset          DESTROYS every class, section, enrollment, waitlist place and drop in the
//                    database (all that was done since the seed), then seeds the very same state
//                    again; needs --yes, and refuses while an enrollment instance of the formation
//                    (BASE_PORT + 100..102) is running
//   --while-running  with --reset: also while the formation runs
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { config } from '../lib/config.ts';
import { type Transaction } from '../lib/db.ts';
import { openEnrollmentDb } from '../lib/enrollment-db.ts';
import { INSTRUCTORS, STUDENTS } from '../lib/roster.ts';
import { commandLine, listening, refuse } from './cli.ts';

const { reset, yes, 'while-running': whileRunning } = commandLine(import.meta.filename, { flags: ['reset', 'yes', 'while-running'] }).flags;
const file = config.enrollment.db;
if (reset && !yes) refuse(import.meta.filename, `--reset empties every table of ${file}: add --yes`);
if (reset && !whileRunning) {
  const running = [];
  for (const address of config.gateway.enrollment) if (await listening(Number(address.split(':')[1]))) running.push(address);
  if (running.length) {
    console.error(`seed-enrollment.ts: enrollment instances run on ${running.join(', ')}: stop the formation first, or add --while-running`);
    process.exit(1);
  }
}

// [instructor, capacity, enrolled, waitlisted] per section, numbered 1, 2, ... within its class.
// The waitlisted count includes LIMITED where LIMITED_WAITS_IN names the section.
type Plan = [instructor: string, capacity: number, enrolled: number, waitlisted: number];
const CATALOGUE: [department: string, courseCode: string, title: string, sections: Plan[]][] = [
  ['CPSC', '120', 'Introduction to Programming', [['alvarez', 40, 16, 0], ['brooks', 40, 12, 0], ['garcia', 40, 8, 0]]],
  ['CPSC', '121', 'Object-Oriented Programming', [['brooks', 35, 14, 0], ['evans', 25, 25, 4]]],
  ['CPSC', '131', 'Data Structures', [['chen', 35, 15, 0], ['dubois', 35, 10, 0]]],
  ['CPSC', '223P', 'Python Programming', [['fischer', 25, 25, 0], ['fischer', 25, 6, 0]]],
  ['CPSC', '240', 'Computer Organization and Assembly Language', [['garcia', 30, 12, 0], ['hughes', 30, 8, 0]]],
  ['CPSC', '315', 'Professional Ethics in Computing', [['ito', 45, 18, 0], ['ito', 45, 6, 0]]],
  ['CPSC', '323', 'Compilers and Languages', [['jensen', 30, 11, 0]]],
  ['CPSC', '332', 'File Structures and Database Systems', [['kowalski', 30, 30, 8], ['lindqvist', 30, 29, 0]]],
  ['CPSC', '335', 'Algorithm Engineering', [['alvarez', 30, 12, 0], ['chen', 20, 20, 2]]],
  ['CPSC', '349', 'Web Front-End Engineering', [['dubois', 30, 12, 0]]],
  ['CPSC', '351', 'Operating Systems Concepts', [['evans', 35, 13, 0], ['hughes', 35, 7, 0]]],
  ['CPSC', '362', 'Foundations of Software Engineering', [['jensen', 30, 13, 0], ['kowalski', 30, 8, 0]]],
  ['CPSC', '449', 'Web Back-End Engineering', [['chen', 30, 30, 15], ['lindqvist', 30, 30, 3], ['ito', 30, 11, 0]]],
  ['CPSC', '471', 'Computer Communications', [['garcia', 30, 10, 0]]],
  ['CPSC', '474', 'Parallel and Distributed Computing', [['lindqvist', 25, 7, 0]]],
  ['CPSC', '481', 'Artificial Intelligence', [['brooks', 24, 24, 1]]],
  ['MATH', '170A', 'Mathematical Structures I', [['fischer', 40, 14, 0], ['hughes', 40, 12, 0]]],
  ['MATH', '338', 'Statistics Applied to Natural Sciences', [['jensen', 40, 11, 0]]],
];

// The seeded students are student001..student100, at most 6 classes and 2 waitlists each. The last
// twenty are left untouched for trying things, except LIMITED, who waits at the back of three
// waitlists and so may join no other.
const SEEDED = STUDENTS.slice(0, 100);
const MAX_CLASSES = 6;
const MAX_WAITLISTS = 2;
const LIMITED = STUDENTS[STUDENTS.length - 1];
const LIMITED_WAITS_IN = ['CPSC 121-2', 'CPSC 332-1', 'CPSC 449-1'];
// A little history, so that "who dropped" has something to show.
const PAST_DROPS: [section: string, student: string, reason: 'self' | 'administrative'][] = [
  ['CPSC 449-3', 'student095', 'self'],
  ['CPSC 449-3', 'student096', 'administrative'],
  ['CPSC 120-1', 'student097', 'self'],
];

interface Load {
  classes: Set<string>;
  waitlists: number;
}

async function seed(tx: Transaction): Promise<void> {
  const load = new Map<string, Load>(SEEDED.map((student) => [student, { classes: new Set(), waitlists: 0 }]));
  // Least busy students first, then by name: spreads the population evenly and deterministically.
  const pick = (count: number, eligible: (student: string, load: Load) => boolean, busyness: (load: Load) => number) =>
    [...load]
      .filter(([student, l]) => eligible(student, l))
      .sort(([a, la], [b, lb]) => busyness(la) - busyness(lb) || a.localeCompare(b))
      .slice(0, count)
      .map(([student]) => student);

  const sections: { key: string; course: string; id: number; plan: Plan }[] = [];
  for (const [department, courseCode, title, plans] of CATALOGUE) {
    const { lastID: classId } = await tx.run('INSERT INTO classes (department, course_code, title) VALUES (?, ?, ?)', [department, courseCode, title]);
    for (const [index, plan] of plans.entries()) {
      const [name, capacity] = plan;
      const instructor = `prof.${name}`;
      if (!INSTRUCTORS.includes(instructor)) throw new Error(`${instructor} is not in lib/roster.ts`);
      const { lastID } = await tx.run(
        'INSERT INTO sections (class_id, section_number, capacity, instructor) VALUES (?, ?, ?, ?)',
        [classId, index + 1, capacity, instructor],
      );
      sections.push({ key: `${department} ${courseCode}-${index + 1}`, course: `${department} ${courseCode}`, id: lastID, plan });
    }
  }
  const byKey = new Map(sections.map((section) => [section.key, section]));

  // Full sections first, so that they can be filled; waitlists last, from students not in the class.
  const fullFirst = [...sections].sort((a, b) => Number(b.plan[2] === b.plan[1]) - Number(a.plan[2] === a.plan[1]));
  for (const { course, id, plan } of fullFirst) {
    const chosen = pick(plan[2], (_, l) => !l.classes.has(course) && l.classes.size < MAX_CLASSES, (l) => l.classes.size);
    if (chosen.length < plan[2]) throw new Error(`the roster is too small to fill ${course} (section ${id})`);
    for (const student of chosen) {
      await tx.run('INSERT INTO enrollments (section_id, student) VALUES (?, ?)', [id, student]);
      load.get(student)!.classes.add(course);
    }
  }
  for (const { key, course, id, plan } of sections) {
    const chosen = pick(plan[3] - Number(LIMITED_WAITS_IN.includes(key)), (_, l) => !l.classes.has(course) && l.waitlists < MAX_WAITLISTS, (l) => l.waitlists);
    for (const [index, student] of chosen.entries()) {
      await tx.run('INSERT INTO waitlist (section_id, student, position) VALUES (?, ?, ?)', [id, student, index + 1]);
      load.get(student)!.waitlists++;
    }
  }
  for (const key of LIMITED_WAITS_IN) {
    const { id } = byKey.get(key)!;
    await tx.run(
      'INSERT INTO waitlist (section_id, student, position) SELECT ?, ?, count(*) + 1 FROM waitlist WHERE section_id = ?',
      [id, LIMITED, id],
    );
  }
  for (const [key, student, reason] of PAST_DROPS) {
    const { id, plan } = byKey.get(key)!;
    const by = reason === 'self' ? student : `prof.${plan[0]}`;
    await tx.run('INSERT INTO drops (section_id, student, dropped_by, reason) VALUES (?, ?, ?, ?)', [id, student, by, reason]);
  }
}

await mkdir(path.dirname(file), { recursive: true });
const db = await openEnrollmentDb();
const seeded = await db.transaction(async (tx) => {
  if (!reset && (await tx.get('SELECT 1 FROM classes LIMIT 1'))) return false;
  for (const table of ['drops', 'waitlist', 'enrollments', 'sections', 'classes']) await tx.run(`DELETE FROM ${table}`);
  await tx.run('UPDATE settings SET auto_enrollment_frozen = 0');
  await seed(tx);
  return true;
});
const totals = (await db.get<Record<string, number>>(
  `SELECT (SELECT count(*) FROM classes) AS classes,
          (SELECT count(*) FROM sections WHERE removed_at IS NULL) AS sections,
          (SELECT count(DISTINCT instructor) FROM sections WHERE removed_at IS NULL) AS instructors,
          (SELECT count(*) FROM enrollments) AS enrollments,
          (SELECT count(DISTINCT student) FROM enrollments) AS students,
          (SELECT count(*) FROM waitlist) AS waitlisted`,
))!;
const summary = `${totals.classes} classes, ${totals.sections} sections, ${totals.instructors} instructors, ` +
  `${totals.enrollments} enrollments of ${totals.students} students, ${totals.waitlisted} waitlisted`;
console.log(`enrollment: ${seeded ? (reset ? 'reset and seeded' : 'seeded') : 'already seeded, nothing changed (--reset --yes starts over)'}: ${summary} in ${file}`);
await db.close();

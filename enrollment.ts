// The enrollment service: the course catalogue, enrollments and waitlists, for students,
// instructors and the Registrar. Three instances share one SQLite file in WAL mode (with
// bin/hosts.sh, one per host on LiteFS: h1's takes the writes, the others read). Every change
// runs in one BEGIN IMMEDIATE transaction that reads the state it decides on, so the rules hold
// under any interleaving of requests across processes. The caller is always the verified bearer.
import Router from '@koa/router';
import { config } from './lib/config.ts';
import { isUniqueViolation, type Connection, type Database, type Transaction } from './lib/db.ts';
import { openEnrollmentDb } from './lib/enrollment-db.ts';
import { Primary } from './lib/primary.ts';
import { refuseWhileStale, replicaConnected, replicaMayAnswer } from './lib/replica-quorum.ts';
import { serve, serviceApp, toStdout, type LogState, type LogWriter, type ServiceApp } from './lib/http.ts';
import { conflict, forbidden, notFound } from './lib/problem.ts';
import { idempotency } from './lib/idempotency.ts';
import { WAITLIST_LIMIT, WAITLISTS_PER_STUDENT } from './lib/limits.ts';
import { authenticate, loadPublicKeys, ROLES, type Caller, type PublicKeys } from './lib/tokens.ts';
import { boolean, fields, idParam, integer, string, validUsername } from './lib/validate.ts';
import { enrollmentDocument } from './enrollment.openapi.ts';

interface Section {
  id: number;
  capacity: number;
  instructor: string;
  removed: number;
}

async function sectionOr404(q: Transaction, id: number): Promise<Section> {
  const section = await q.get<Section>(
    'SELECT id, capacity, instructor, removed_at IS NOT NULL AS removed FROM sections WHERE id = ?',
    [id],
  );
  if (!section) throw notFound(`there is no section ${id}`);
  return section;
}

function offered(section: Section): Section {
  if (section.removed) throw conflict(`section ${section.id} has been removed`);
  return section;
}

// Instructors see and change only the sections they teach; the Registrar, any section.
function inCharge(caller: Caller, section: Section): Section {
  if (!caller.roles.includes('Registrar') && section.instructor !== caller.username) {
    throw forbidden(`section ${section.id} is taught by ${section.instructor}, not by you`);
  }
  return section;
}

// Everyone behind a place that was freed moves up one, in one statement. It walks the position
// index front to back, so each row moves into the place just freed and UNIQUE (section_id,
// position) holds after every single row: positions stay 1..n.
async function closeUpWaitlist(tx: Transaction, sectionId: number, freedPosition: number): Promise<void> {
  await tx.run(
    'UPDATE waitlist INDEXED BY waitlist_position SET position = position - 1 WHERE section_id = ? AND position > ?',
    [sectionId, freedPosition],
  );
}

async function leaveWaitlist(tx: Transaction, sectionId: number, student: string): Promise<boolean> {
  const left = await tx.get<{ position: number }>('DELETE FROM waitlist WHERE section_id = ? AND student = ? RETURNING position', [sectionId, student]);
  if (!left) return false;
  await closeUpWaitlist(tx, sectionId, left.position);
  return true;
}

// Gives the section's free seats to the front of its waitlist, unless the Registrar has frozen
// automatic enrollment. Returns who was enrolled.
async function promote(tx: Transaction, section: Section): Promise<string[]> {
  const { frozen, enrolled } = (await tx.get<{ frozen: number; enrolled: number }>(
    `SELECT (SELECT auto_enrollment_frozen FROM settings) AS frozen,
            (SELECT count(*) FROM enrollments WHERE section_id = ?) AS enrolled`,
    [section.id],
  ))!;
  if (frozen) return [];
  const promoted: string[] = [];
  for (let seats = section.capacity - enrolled; seats > 0; seats--) {
    const first = await tx.get<{ student: string }>('DELETE FROM waitlist WHERE section_id = ? AND position = 1 RETURNING student', [section.id]);
    if (!first) break;
    await closeUpWaitlist(tx, section.id, 1);
    await tx.run('INSERT INTO enrollments (section_id, student) VALUES (?, ?)', [section.id, first.student]);
    promoted.push(first.student);
  }
  return promoted;
}

// Ends an enrollment, keeps a record of it, and hands the seat to the first in line.
async function drop(tx: Transaction, section: Section, student: string, by: string, reason: 'self' | 'administrative'): Promise<string | undefined> {
  const { changes } = await tx.run('DELETE FROM enrollments WHERE section_id = ? AND student = ?', [section.id, student]);
  if (!changes) throw notFound(`${reason === 'self' ? 'you are' : `${student} is`} not enrolled in section ${section.id}`);
  const [promoted] = await promote(tx, section);
  await tx.run(
    'INSERT INTO drops (section_id, student, dropped_by, reason, promoted) VALUES (?, ?, ?, ?, ?)',
    [section.id, student, by, reason, promoted ?? null],
  );
  return promoted;
}

// Offered sections with their class and counts, as every listing shows them.
const SECTIONS = `
  SELECT sections.id, sections.class_id, classes.department, classes.course_code, classes.title,
         sections.section_number, sections.instructor, sections.capacity,
         (SELECT count(*) FROM enrollments WHERE section_id = sections.id) AS enrolled,
         (SELECT count(*) FROM waitlist WHERE section_id = sections.id) AS waitlist_length
  FROM sections JOIN classes ON classes.id = sections.class_id
  WHERE sections.removed_at IS NULL`;

interface SectionRow {
  id: number;
  class_id: number;
  department: string;
  course_code: string;
  title: string;
  section_number: number;
  instructor: string;
  capacity: number;
  enrolled: number;
  waitlist_length: number;
}

const sectionView = (row: SectionRow) => ({ ...row, seats_left: row.capacity - row.enrolled });

interface ClassRow {
  id: number;
  department: string;
  course_code: string;
  title: string;
}

export interface EnrollmentDeps {
  db: Connection & Pick<Database, 'transaction' | 'close'>; // a Database, or on LiteFS a Primary
  // On a replica-only host (bin/hosts.sh): whether its replica may answer (lib/replica-quorum.ts).
  replicaMayAnswer?: () => Promise<boolean>;
  publicKeys: PublicKeys;
  jwt: Pick<typeof config.jwt, 'issuer' | 'audience'>;
  log?: LogWriter;
}

// The database that the settings name, with its schema applied, and the public key set.
export async function openEnrollmentDeps(settings: typeof config.enrollment, jwt: typeof config.jwt, log: LogWriter = toStdout): Promise<EnrollmentDeps> {
  const db = settings.litefs === 'off' ? await openEnrollmentDb(settings) : await reconnecting(settings, log);
  const mayAnswer = settings.litefs === 'replica' ? replicaMayAnswer(replicaConnected(settings.db), config.replicaPeers) : undefined;
  return { db, replicaMayAnswer: mayAnswer, publicKeys: await loadPublicKeys(jwt.publicKeys), jwt, log };
}

// On LiteFS (bin/hosts.sh), the connection dies with its host's litefs (every call on it then fails,
// even once a new litefs is mounted): it is given up and opened again when the mount is back, and
// meanwhile requests answer 503 with Retry-After (lib/primary.ts, which does this for the users
// database's primary). A write on a replica's read-only copy answers the same 503.
async function reconnecting(settings: typeof config.enrollment, log: LogWriter): Promise<Primary> {
  const away = "this host's copy of the enrollment database cannot take this request now (its litefs is restarting, or it is a read-only replica and the primary's host is away): nothing was changed; try again shortly";
  const db = new Primary({ file: settings.db, open: ({ create }) => openEnrollmentDb(settings, { create }), away, log });
  await db.connect();
  return db;
}

// The app owns the database it is given: close() closes it.
export function createEnrollmentApp({ db, replicaMayAnswer, publicKeys, jwt, log }: EnrollmentDeps): ServiceApp {
  const tokens = { keys: publicKeys.getKey, issuer: jwt.issuer, audience: jwt.audience };
  const closed = new AbortController();

  // The section named in the path, for its own Instructor or the Registrar.
  async function sectionInCharge(ctx: { get(field: string): string; state: LogState; params: Record<string, string> }): Promise<Section> {
    const caller = await authenticate(ctx, tokens, 'Instructor', 'Registrar');
    return inCharge(caller, await sectionOr404(db, idParam(ctx.params.id, 'section id')));
  }

  // Every class (or the one asked for) with the sections it offers.
  async function classesWithSections(classId: number | null) {
    const classes = await db.all<ClassRow>(
      'SELECT id, department, course_code, title FROM classes WHERE $id IS NULL OR id = $id ORDER BY department, course_code',
      { $id: classId },
    );
    const sections = await db.all<SectionRow>(
      `${SECTIONS} AND ($id IS NULL OR sections.class_id = $id) ORDER BY sections.section_number`,
      { $id: classId },
    );
    return classes.map((row) => ({
      ...row,
      sections: sections
        .filter((section) => section.class_id === row.id)
        .map(({ class_id, department, course_code, title, ...section }) => ({ ...section, seats_left: section.capacity - section.enrolled })),
    }));
  }

  const router = new Router<LogState>();

  // ---- the catalogue (any role) ----

  router.get('/classes', async (ctx) => {
    await authenticate(ctx, tokens, ...ROLES);
    ctx.body = { classes: await classesWithSections(null) };
  });

  router.get('/classes/:id', async (ctx) => {
    await authenticate(ctx, tokens, ...ROLES);
    const id = idParam(ctx.params.id, 'class id');
    const [found] = await classesWithSections(id);
    if (!found) throw notFound(`there is no class ${id}`);
    ctx.body = found;
  });

  router.get('/sections/:id', async (ctx) => {
    await authenticate(ctx, tokens, ...ROLES);
    const id = idParam(ctx.params.id, 'section id');
    const row = await db.get<SectionRow>(`${SECTIONS} AND sections.id = ?`, [id]);
    if (!row) throw notFound(`there is no section ${id} on offer`);
    ctx.body = sectionView(row);
  });

  router.get('/auto-enrollment', async (ctx) => {
    await authenticate(ctx, tokens, ...ROLES);
    const { frozen } = (await db.get<{ frozen: number }>('SELECT auto_enrollment_frozen AS frozen FROM settings'))!;
    ctx.body = { frozen: frozen === 1 };
  });

  // ---- students: the caller's own enrollments and waitlists ----

  router.post('/me/enrollments', async (ctx) => {
    const { username: student } = await authenticate(ctx, tokens, 'Student');
    const body = fields(ctx.request.body, ['section_id']);
    const sectionId = integer(body.section_id, 'section_id');
    ctx.state.log = { section: String(sectionId) };
    const result = await db.transaction(async (tx) => {
      // Everything the decision needs, in one trip: the write lock is held from BEGIN to COMMIT.
      const state = await tx.get<Section & { enrolled: number; waiting: number; is_enrolled: number; position: number | null; lists: number }>(
        `SELECT id, capacity, instructor, removed_at IS NOT NULL AS removed,
                (SELECT count(*) FROM enrollments WHERE section_id = $id) AS enrolled,
                (SELECT count(*) FROM waitlist WHERE section_id = $id) AS waiting,
                EXISTS (SELECT 1 FROM enrollments WHERE section_id = $id AND student = $student) AS is_enrolled,
                (SELECT position FROM waitlist WHERE section_id = $id AND student = $student) AS position,
                (SELECT count(*) FROM waitlist WHERE student = $student) AS lists
         FROM sections WHERE id = $id`,
        { $id: sectionId, $student: student },
      );
      if (!state) throw notFound(`there is no section ${sectionId}`);
      const section = offered(state);
      if (state.is_enrolled) throw conflict(`you are already enrolled in section ${sectionId}`);
      if (state.position) throw conflict(`you are already on the waitlist of section ${sectionId}, at position ${state.position}`);
      const { enrolled, waiting, lists } = state;
      // A seat left free while students wait (automatic enrollment is frozen) is theirs, not a newcomer's.
      if (enrolled < section.capacity && waiting === 0) {
        await tx.run('INSERT INTO enrollments (section_id, student) VALUES (?, ?)', [sectionId, student]);
        return { section_id: sectionId, status: 'enrolled' as const };
      }
      if (waiting >= WAITLIST_LIMIT) {
        throw conflict(`section ${sectionId} is full and its waitlist already holds ${WAITLIST_LIMIT} students`);
      }
      if (lists >= WAITLISTS_PER_STUDENT) {
        throw conflict(`section ${sectionId} is full and you are already on ${lists} waitlists, the most allowed`);
      }
      await tx.run('INSERT INTO waitlist (section_id, student, position) VALUES (?, ?, ?)', [sectionId, student, waiting + 1]);
      return { section_id: sectionId, status: 'waitlisted' as const, position: waiting + 1 };
    });
    ctx.state.log.result = result.status;
    ctx.status = result.status === 'enrolled' ? 201 : 202;
    ctx.body = result;
  });

  router.get('/me/enrollments', async (ctx) => {
    const { username: student } = await authenticate(ctx, tokens, 'Student');
    const enrollments = await db.all(
      `SELECT sections.id AS section_id, classes.id AS class_id, classes.department, classes.course_code, classes.title,
              sections.section_number, sections.instructor, enrollments.enrolled_at
       FROM enrollments
       JOIN sections ON sections.id = enrollments.section_id
       JOIN classes ON classes.id = sections.class_id
       WHERE enrollments.student = ?
       ORDER BY classes.department, classes.course_code, sections.section_number`,
      [student],
    );
    ctx.body = { enrollments };
  });

  router.delete('/me/enrollments/:sectionId', async (ctx) => {
    const { username: student } = await authenticate(ctx, tokens, 'Student');
    const sectionId = idParam(ctx.params.sectionId, 'section id');
    const promoted = await db.transaction(async (tx) => drop(tx, await sectionOr404(tx, sectionId), student, student, 'self'));
    ctx.state.log = { section: String(sectionId), promoted: promoted ?? '-' };
    ctx.status = 204;
  });

  router.get('/me/waitlist', async (ctx) => {
    const { username: student } = await authenticate(ctx, tokens, 'Student');
    const waitlist = await db.all(
      `SELECT sections.id AS section_id, classes.id AS class_id, classes.department, classes.course_code, classes.title,
              sections.section_number, sections.instructor, waitlist.position,
              (SELECT count(*) FROM waitlist AS everyone WHERE everyone.section_id = waitlist.section_id) AS waitlist_length,
              waitlist.joined_at
       FROM waitlist
       JOIN sections ON sections.id = waitlist.section_id
       JOIN classes ON classes.id = sections.class_id
       WHERE waitlist.student = ?
       ORDER BY classes.department, classes.course_code, sections.section_number`,
      [student],
    );
    ctx.body = { waitlist };
  });

  router.delete('/me/waitlist/:sectionId', async (ctx) => {
    const { username: student } = await authenticate(ctx, tokens, 'Student');
    const sectionId = idParam(ctx.params.sectionId, 'section id');
    ctx.state.log = { section: String(sectionId) };
    await db.transaction(async (tx) => {
      await sectionOr404(tx, sectionId);
      if (!(await leaveWaitlist(tx, sectionId, student))) throw notFound(`you are not on the waitlist of section ${sectionId}`);
    });
    ctx.status = 204;
  });

  // ---- instructors (their own sections) and the Registrar (any section) ----

  router.get('/me/sections', async (ctx) => {
    const { username: instructor } = await authenticate(ctx, tokens, 'Instructor');
    const rows = await db.all<SectionRow>(
      `${SECTIONS} AND sections.instructor = ? ORDER BY classes.department, classes.course_code, sections.section_number`,
      [instructor],
    );
    ctx.body = { sections: rows.map(sectionView) };
  });

  router.get('/sections/:id/students', async (ctx) => {
    const section = await sectionInCharge(ctx);
    const students = await db.all(
      'SELECT student AS username, enrolled_at FROM enrollments WHERE section_id = ? ORDER BY student',
      [section.id],
    );
    ctx.body = { section_id: section.id, students };
  });

  router.get('/sections/:id/dropped', async (ctx) => {
    const section = await sectionInCharge(ctx);
    const dropped = await db.all(
      'SELECT student AS username, dropped_at, dropped_by, reason, promoted FROM drops WHERE section_id = ? ORDER BY id',
      [section.id],
    );
    ctx.body = { section_id: section.id, dropped };
  });

  router.get('/sections/:id/waitlist', async (ctx) => {
    const section = await sectionInCharge(ctx);
    const waitlist = await db.all(
      'SELECT position, student AS username, joined_at FROM waitlist WHERE section_id = ? ORDER BY position',
      [section.id],
    );
    ctx.body = { section_id: section.id, waitlist };
  });

  router.delete('/sections/:id/students/:username', async (ctx) => {
    const caller = await authenticate(ctx, tokens, 'Instructor', 'Registrar');
    const sectionId = idParam(ctx.params.id, 'section id');
    const student = validUsername(ctx.params.username, 'username');
    const promoted = await db.transaction(async (tx) => {
      const section = inCharge(caller, await sectionOr404(tx, sectionId));
      return drop(tx, section, student, caller.username, 'administrative');
    });
    ctx.state.log = { section: String(sectionId), dropped: student, promoted: promoted ?? '-' };
    ctx.status = 204;
  });

  // ---- the Registrar ----

  router.post('/classes', async (ctx) => {
    await authenticate(ctx, tokens, 'Registrar');
    const body = fields(ctx.request.body, ['department', 'course_code', 'title']);
    const department = string(body.department, 'department', { min: 2, max: 8, pattern: /^[A-Za-z]+$/, hint: 'must be letters only' }).toUpperCase();
    const courseCode = string(body.course_code, 'course_code', { min: 1, max: 8, pattern: /^[0-9A-Za-z]+$/, hint: 'must be letters and digits only' }).toUpperCase();
    // SQLite's length() stops at a NUL, so the schema's CHECK would see a control character differently.
    const title = string(body.title, 'title', { max: 200, trim: true, pattern: /^\P{Cc}+$/u, hint: 'must not hold control characters' });
    try {
      const { lastID } = await db.transaction((tx) => tx.run('INSERT INTO classes (department, course_code, title) VALUES (?, ?, ?)', [department, courseCode, title]));
      ctx.status = 201;
      ctx.set('Location', `/classes/${lastID}`);
      ctx.body = { id: lastID, department, course_code: courseCode, title, sections: [] };
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`the class ${department} ${courseCode} exists already`);
      throw error;
    }
  });

  router.post('/sections', async (ctx) => {
    await authenticate(ctx, tokens, 'Registrar');
    const body = fields(ctx.request.body, ['class_id', 'section_number', 'capacity', 'instructor']);
    const classId = integer(body.class_id, 'class_id');
    const number = integer(body.section_number, 'section_number', { max: 99 });
    const capacity = integer(body.capacity, 'capacity', { max: 500 });
    const instructor = validUsername(body.instructor, 'instructor');
    const id = await db.transaction(async (tx) => {
      if (!(await tx.get('SELECT 1 FROM classes WHERE id = ?', [classId]))) throw notFound(`there is no class ${classId}`);
      try {
        const { lastID } = await tx.run(
          'INSERT INTO sections (class_id, section_number, capacity, instructor) VALUES (?, ?, ?, ?)',
          [classId, number, capacity, instructor],
        );
        return lastID;
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict(`class ${classId} already has a section ${number}`);
        throw error;
      }
    });
    ctx.status = 201;
    ctx.set('Location', `/sections/${id}`);
    ctx.body = sectionView((await db.get<SectionRow>(`${SECTIONS} AND sections.id = ?`, [id]))!);
  });

  // A soft delete: the section leaves the catalogue and nobody can enroll, its students' enrollments
  // become drops ("section removed", so each student and the instructor can see what happened), and
  // its waitlist is cleared so those students may wait elsewhere. Nothing is promoted.
  router.delete('/sections/:id', async (ctx) => {
    const caller = await authenticate(ctx, tokens, 'Registrar');
    const sectionId = idParam(ctx.params.id, 'section id');
    await db.transaction(async (tx) => {
      offered(await sectionOr404(tx, sectionId));
      await tx.run(
        `INSERT INTO drops (section_id, student, dropped_by, reason)
         SELECT section_id, student, ?, 'section removed' FROM enrollments WHERE section_id = ? ORDER BY student`,
        [caller.username, sectionId],
      );
      await tx.run('DELETE FROM enrollments WHERE section_id = ?', [sectionId]);
      await tx.run('DELETE FROM waitlist WHERE section_id = ?', [sectionId]);
      await tx.run("UPDATE sections SET removed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?", [sectionId]);
    });
    ctx.status = 204;
  });

  router.put('/sections/:id/instructor', async (ctx) => {
    await authenticate(ctx, tokens, 'Registrar');
    const sectionId = idParam(ctx.params.id, 'section id');
    const instructor = validUsername(fields(ctx.request.body, ['instructor']).instructor, 'instructor');
    await db.transaction(async (tx) => {
      offered(await sectionOr404(tx, sectionId));
      await tx.run('UPDATE sections SET instructor = ? WHERE id = ?', [instructor, sectionId]);
    });
    ctx.body = sectionView((await db.get<SectionRow>(`${SECTIONS} AND sections.id = ?`, [sectionId]))!);
  });

  // Unfreezing fills, in waitlist order, every seat that was left free while frozen.
  router.put('/auto-enrollment', async (ctx) => {
    await authenticate(ctx, tokens, 'Registrar');
    const frozen = boolean(fields(ctx.request.body, ['frozen']).frozen, 'frozen');
    const promoted = await db.transaction(async (tx) => {
      await tx.run('UPDATE settings SET auto_enrollment_frozen = ?', [frozen ? 1 : 0]);
      if (frozen) return 0;
      const waiting = await tx.all<Section>(
        `SELECT id, capacity, instructor, 0 AS removed FROM sections
         WHERE removed_at IS NULL AND EXISTS (SELECT 1 FROM waitlist WHERE section_id = sections.id)`,
      );
      let total = 0;
      for (const section of waiting) total += (await promote(tx, section)).length;
      return total;
    });
    ctx.state.log = { frozen: String(frozen), promoted: String(promoted) };
    ctx.body = { frozen, promoted };
  });

  router.get('/health', async (ctx) => {
    await db.get('SELECT 1 FROM settings');
    ctx.body = { status: 'ok' };
  });

  return serviceApp({
    router,
    description: enrollmentDocument,
    name: 'enrollment',
    // A replica that has lost the primary while another host's has not may be behind: it answers
    // 503, which the gateway sends on to another host.
    middleware: [refuseWhileStale(replicaMayAnswer), idempotency(db, closed.signal)],
    log,
    close: async () => {
      closed.abort();
      await db.close();
    },
  });
}

if (import.meta.main) {
  await serve(createEnrollmentApp(await openEnrollmentDeps(config.enrollment, config.jwt)), config.enrollment.port, 'enrollment');
}

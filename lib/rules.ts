// The enrollment rules as queries over the whole database, each one listing what breaks it (so an
// empty answer means the rule holds). The schema enforces some of them too; these check the rest,
// after a load test or a concurrency test.
import type { Database } from './db.ts';
import { WAITLIST_LIMIT, WAITLISTS_PER_STUDENT } from './limits.ts';

const RULES: Record<string, string> = {
  'a section over capacity': `
    SELECT id FROM sections WHERE (SELECT count(*) FROM enrollments WHERE section_id = sections.id) > capacity`,
  [`a waitlist over ${WAITLIST_LIMIT}`]: `
    SELECT section_id FROM waitlist GROUP BY section_id HAVING count(*) > ${WAITLIST_LIMIT}`,
  'waitlist positions that are not 1..n': `
    SELECT section_id FROM waitlist GROUP BY section_id
    HAVING min(position) <> 1 OR max(position) <> count(*) OR count(DISTINCT position) <> count(*)`,
  [`a student on more than ${WAITLISTS_PER_STUDENT} waitlists`]: `
    SELECT student FROM waitlist GROUP BY student HAVING count(*) > ${WAITLISTS_PER_STUDENT}`,
  'a student enrolled and waitlisted in one section': `
    SELECT section_id, student FROM enrollments JOIN waitlist USING (section_id, student)`,
  'a free seat while students wait (automatic enrollment not frozen)': `
    SELECT id FROM sections
    WHERE removed_at IS NULL AND NOT (SELECT auto_enrollment_frozen FROM settings)
      AND (SELECT count(*) FROM enrollments WHERE section_id = sections.id) < capacity
      AND EXISTS (SELECT 1 FROM waitlist WHERE section_id = sections.id)`,
  'a removed section with enrollments or a waitlist': `
    SELECT id FROM sections WHERE removed_at IS NOT NULL
      AND (EXISTS (SELECT 1 FROM enrollments WHERE section_id = sections.id) OR EXISTS (SELECT 1 FROM waitlist WHERE section_id = sections.id))`,
};

export async function checkEnrollmentRules(db: Database): Promise<string[]> {
  const broken: string[] = [];
  for (const [rule, sql] of Object.entries(RULES)) {
    const rows = await db.all(sql);
    if (rows.length) broken.push(`${rule}: ${JSON.stringify(rows.slice(0, 5))}`);
  }
  return broken;
}

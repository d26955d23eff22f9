-- The users service's own database (replicated by LiteFS). Safe to run again.
-- Rollback journal, not WAL: in WAL mode SQLite memory-maps the -shm file on each secondary's FUSE
-- mount, and when that node's litefs dies the reader gets SIGBUS or stalls ~10 s in SQLITE_PROTOCOL
-- retries. Without -shm a read on a dying replica fails within milliseconds and the rotation moves
-- on. The journal mode is stored in the file: this line sets it only for a new database (users.ts
-- refuses to switch a live cluster; see README "Migrating from WAL").
PRAGMA journal_mode = DELETE;
CREATE TABLE IF NOT EXISTS users (
  id               INTEGER PRIMARY KEY,
  username         TEXT    NOT NULL UNIQUE,     -- stored lower-case: unique regardless of case
  password_hash    TEXT    NOT NULL,            -- pbkdf2_sha256$<iterations>$<salt>$<base64 hash>
  password_version INTEGER NOT NULL DEFAULT 1,  -- bumped by each password change (not by a rehash)
  created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE IF NOT EXISTS user_roles (
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role    TEXT    NOT NULL CHECK (role IN ('Student', 'Instructor', 'Registrar')),
  PRIMARY KEY (user_id, role)
);

-- Logins need only a replica, so a refresh token is not stored when it is issued: it carries its
-- family (all the refresh tokens descended from one login) and the password_version it was issued
-- under, and is recorded here when it is first used. Presenting it again means it was stolen: its
-- family is revoked (RFC 9700, 4.14), as logout does. A password change bumps password_version,
-- which refuses every refresh token issued before it.
CREATE TABLE IF NOT EXISTS used_refresh_tokens (
  jti        TEXT    PRIMARY KEY,
  family     TEXT    NOT NULL,
  expires_at INTEGER NOT NULL   -- the token's exp (unix seconds): rows past it may be deleted
);

CREATE TABLE IF NOT EXISTS revoked_families (
  family     TEXT    PRIMARY KEY,
  expires_at INTEGER NOT NULL   -- past every token of the family's exp: then it may be deleted
);

-- Failed logins per account (made-up usernames too), shared by every users instance and kept across
-- restarts: see lib/lockout.ts for the waits they lead to.
CREATE TABLE IF NOT EXISTS login_failures (
  username     TEXT    PRIMARY KEY,
  failures     INTEGER NOT NULL,
  locked_until INTEGER NOT NULL,  -- unix milliseconds
  last_failure INTEGER NOT NULL   -- unix milliseconds
);

-- Where refresh tokens were stored when issued (before logins needed only a replica).
DROP TABLE IF EXISTS refresh_tokens;

-- The users service's own database (replicated by LiteFS). Safe to run again.
-- Rollback journal, not WAL: in WAL mode SQLite memory-maps the -shm file on each secondary's FUSE
-- mount, and when that node's litefs dies the reader gets SIGBUS or stalls ~10 s in SQLITE_PROTOCOL
-- retries. Without -shm a read on a dying replica fails within milliseconds and the rotation moves
-- on. The journal mode is stored in the file: this line sets it only for a new database (users.ts
-- refuses to switch a live cluster; see README "Migrating from WAL").
PRAGMA journal_mode = DELETE;
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

-- Every refresh token issued, so that each can be used once. A family is all the refresh tokens
-- descended from one login: presenting a used one again means it was stolen, and the whole family
-- is revoked (RFC 9700, 4.14). Logout and a password change revoke families too.
CREATE TABLE IF NOT EXISTS refresh_tokens (
  jti        TEXT    PRIMARY KEY,
  family     TEXT    NOT NULL,
  user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  expires_at INTEGER NOT NULL,  -- the token's exp (unix seconds): rows past it may be deleted
  state      TEXT    NOT NULL DEFAULT 'current' CHECK (state IN ('current', 'used', 'revoked'))
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX IF NOT EXISTS refresh_tokens_user ON refresh_tokens (user_id);

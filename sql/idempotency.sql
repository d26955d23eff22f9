-- Writes sent with an Idempotency-Key (lib/idempotency.ts), in each service's own database (both
-- services apply this file after their schema): recorded in the write's own transaction, then given
-- the answer, which a repeat of the request gets again. Kept a day. Safe to run again.
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key        TEXT    PRIMARY KEY,
  request    TEXT    NOT NULL,  -- a hash of method, path, caller and body: the same key for another request is refused
  status     INTEGER,           -- NULL until the answer is kept (the instance died between the two)
  body       TEXT,
  location   TEXT,
  created_at INTEGER NOT NULL   -- unix seconds
);

// Idempotency-Key (IETF draft "The Idempotency-Key HTTP Header Field"): a write sent with a key is
// carried out once however often it is sent, and a repeat gets the first answer again. An instance
// that dies while it handles a write leaves its client with no answer and no way to know whether the
// write happened; with a key, the gateway sends the request again to another instance (etc/
// haproxy.cfg), and so may the client. The key is recorded in the transaction of the write itself
// (lib/db.ts beforeCommit): a write that rolled back left no key, one that committed left it.
import { createHash } from 'node:crypto';
import type Koa from 'koa';
import { repeatUntilClosed } from './background.ts';
import { beforeCommit, isUniqueViolation, type Connection, type Transaction } from './db.ts';
import { conflict, unprocessable } from './problem.ts';

// Keys are kept this long (forgotten hourly): a repeat after that is a new request.
const KEEP_KEYS_SECONDS = 24 * 60 * 60;

interface Seen {
  request: string;
  status: number | null;
  body: string | null;
  location: string | null;
}

// `except`: paths whose writes must never be replayed (a refresh token's second use revokes it).
// Old keys are forgotten hourly until `closed` aborts.
export function idempotency(db: Connection, closed: AbortSignal, except?: RegExp): Koa.Middleware {
  repeatUntilClosed(
    closed,
    60 * 60 * 1000,
    () => db.run('DELETE FROM idempotency_keys WHERE created_at < ?', [Math.floor(Date.now() / 1000) - KEEP_KEYS_SECONDS]),
    'forgetting old idempotency keys',
  );
  return async (ctx, next) => {
    const key = ctx.get('Idempotency-Key');
    if (!key || ctx.method === 'GET' || ctx.method === 'HEAD' || except?.test(ctx.path)) return next();
    if (!/^[\x21-\x7e]{1,255}$/.test(key)) throw unprocessable('Idempotency-Key must be 1 to 255 visible ASCII characters');
    // The same key with another request (or another caller) is a client's mistake, never a replay.
    const request = createHash('sha256').update(JSON.stringify([ctx.method, ctx.path, ctx.get('Authorization'), ctx.request.body ?? null])).digest('base64url');
    const seen = await db.get<Seen>('SELECT request, status, body, location FROM idempotency_keys WHERE key = ?', [key]);
    if (seen) return replay(ctx, key, request, seen);

    let recorded = false;
    const record = async (tx: Transaction) => {
      if (recorded) return; // a request with two transactions records its key in the first
      try {
        await tx.run('INSERT INTO idempotency_keys (key, request, created_at) VALUES (?, ?, ?)', [key, request, Math.floor(Date.now() / 1000)]);
      } catch (error) {
        // The same request, sent again while the first was still being carried out, committed first.
        if (isUniqueViolation(error)) throw conflict(`the request with Idempotency-Key ${key} has been carried out already`);
        throw error;
      }
      recorded = true;
    };
    await beforeCommit.run(record, next);
    if (!recorded) return;
    // The write is done: a failure to keep its answer must not turn into an error (a repeat then
    // hears that the request was carried out).
    await db
      .run('UPDATE idempotency_keys SET status = ?, body = ?, location = ? WHERE key = ?', [
        ctx.status,
        ctx.body === undefined ? null : JSON.stringify(ctx.body),
        ctx.response.get('Location') || null,
        key,
      ])
      .catch((error: Error) => console.error(`keeping the answer for Idempotency-Key ${key} failed: ${error.message}`));
  };
}

function replay(ctx: Koa.Context, key: string, request: string, seen: Seen): void {
  if (seen.request !== request) throw unprocessable(`Idempotency-Key ${key} was sent before with another request`);
  // Committed, but the instance died before it could keep the answer.
  if (seen.status === null) throw conflict(`the request with Idempotency-Key ${key} was carried out, but its answer was lost: look up the outcome`);
  ctx.status = seen.status;
  if (seen.body !== null) ctx.body = JSON.parse(seen.body);
  if (seen.location) ctx.set('Location', seen.location);
  ctx.set('Idempotent-Replayed', 'true');
}

// Password hashes in Django's format, as in Simon Willison's "Password hashing in Python with
// pbkdf2": pbkdf2_sha256$<iterations>$<salt>$<base64 hash>. The salt is used as its UTF-8 text,
// exactly as Python's hashlib.pbkdf2_hmac(salt.encode()) does, so hashes move both ways.
import { pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { config } from './config.ts';

const ALGORITHM = 'pbkdf2_sha256';
const KEY_BYTES = 32;
// Upper bound on iterations accepted from a stored hash: a corrupt row must not cost minutes.
const MAX_ITERATIONS = 10_000_000;
const derive = promisify(pbkdf2);

// Hashing runs on libuv's thread pool, never on the event loop. SQLite queries run on the same
// pool (config.threadPoolSize threads), so hashes may take all but four of them: one per replica,
// which a dying replica may hold for a while (lib/rotation.ts lets it hold no more), and two for the
// primary and everything else, so that a burst of logins never makes /health or a write wait.
const MAX_CONCURRENT_HASHES = Math.max(1, config.threadPoolSize - 4);
let hashing = 0;
const waiting: (() => void)[] = [];

async function digest(password: string, salt: string, iterations: number): Promise<Buffer> {
  if (hashing < MAX_CONCURRENT_HASHES) hashing++;
  else await new Promise<void>((resolve) => waiting.push(resolve)); // a finishing hash hands over its slot
  try {
    return await derive(password, salt, iterations, KEY_BYTES, 'sha256');
  } finally {
    const next = waiting.shift();
    if (next) next();
    else hashing--;
  }
}

export async function hashPassword(password: string, iterations: number, salt = randomBytes(16).toString('hex')): Promise<string> {
  if (salt.includes('$')) throw new Error('salt must not contain "$"');
  const hash = await digest(password, salt, iterations);
  return [ALGORITHM, iterations, salt, hash.toString('base64')].join('$');
}

// The iteration count of a stored hash, or 0 if it is not one of ours.
export function hashIterations(encoded: string): number {
  const [algorithm, iterations] = encoded.split('$');
  return algorithm === ALGORITHM && Number.isSafeInteger(Number(iterations)) ? Number(iterations) : 0;
}

export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parts = encoded.split('$');
  if (parts.length !== 4) return false;
  const [algorithm, iterationText, salt, expectedBase64] = parts;
  const iterations = Number(iterationText);
  if (algorithm !== ALGORITHM || !Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
    return false;
  }
  const expected = Buffer.from(expectedBase64, 'base64');
  const actual = await digest(password, salt, iterations);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

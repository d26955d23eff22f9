// Reads spread over replicas in turn (round robin), skipping any replica that fails.
// Unlike a plain cycle, a replica that errors or times out is benched for a while and the same
// read goes on to the next one; when every replica is benched the read goes to the fallback.
// A read that outlives its timeout may still hold a thread of libuv's pool (a file call on a FUSE
// mount whose daemon died can hang): the replica gets no other work until that read returns, so a
// dead replica holds one thread at most and the pool stays free for hashes and the primary.
import { Database, TimeoutError, withTimeout, type Connection } from './db.ts';

export interface Replica {
  name: string;
  file: string;
  timeoutMs?: number; // this replica's own, instead of the rotation's
}

interface ReplicaState extends Replica {
  connection?: Promise<Database>;
  benchedUntil: number;
  stuck?: Promise<unknown>; // a read that timed out and has not returned yet
}

export interface RotationOptions {
  // Asked before a replica's connection is (re)opened; false benches it like an error would.
  ready?: (replica: Replica) => Promise<boolean>;
  benchMs?: number;
  timeoutMs?: number;
  busyTimeoutMs?: number; // how long a read waits for LiteFS applying a transaction (100 ms)
  onFailure?: (replica: string, error: unknown) => void;
}

export class ReadRotation {
  readonly #replicas: ReplicaState[];
  readonly #fallback: { name: string; db: Connection };
  readonly #ready: (replica: Replica) => Promise<boolean>;
  readonly #benchMs: number;
  readonly #timeoutMs: number;
  readonly #busyTimeoutMs: number;
  readonly #onFailure: (replica: string, error: unknown) => void;
  #next = 0;

  constructor(replicas: Replica[], fallback: { name: string; db: Connection }, options: RotationOptions = {}) {
    this.#replicas = replicas.map((replica) => ({ ...replica, benchedUntil: 0 }));
    this.#fallback = fallback;
    this.#ready = options.ready ?? (async () => true);
    this.#benchMs = options.benchMs ?? 1000;
    this.#timeoutMs = options.timeoutMs ?? 1000;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 100;
    this.#onFailure = options.onFailure ?? (() => {});
  }

  // Each read starts at the next replica in turn and tries every one at most once.
  async read<T>(query: (db: Connection) => Promise<T>): Promise<{ value: T; served: string }> {
    const start = this.#next;
    this.#next = (start + 1) % Math.max(this.#replicas.length, 1);
    for (let offset = 0; offset < this.#replicas.length; offset++) {
      const replica = this.#replicas[(start + offset) % this.#replicas.length];
      if (replica.benchedUntil > Date.now() || replica.stuck) continue;
      const connection = (replica.connection ??= this.#open(replica));
      const work = connection.then(query);
      try {
        const value = await withTimeout(work, replica.timeoutMs ?? this.#timeoutMs);
        return { value, served: replica.name };
      } catch (error) {
        if (error instanceof TimeoutError && !replica.stuck) {
          replica.stuck = work.catch(() => {}).finally(() => (replica.stuck = undefined));
        }
        this.#bench(replica, connection, error);
      }
    }
    return { value: await query(this.#fallback.db), served: this.#fallback.name };
  }

  async close(): Promise<void> {
    await Promise.all(this.#replicas.map((replica) => closeQuietly(replica.connection)));
  }

  async #open(replica: Replica): Promise<Database> {
    if (!(await this.#ready(replica))) throw new Error('not ready');
    // A read waits at most busyTimeoutMs for LiteFS applying a transaction (it holds the lock meanwhile).
    return Database.open(replica.file, { readonly: true, busyTimeoutMs: this.#busyTimeoutMs });
  }

  // A failed connection may point at a dead FUSE mount: drop it so the next try opens afresh.
  // Concurrent reads may fail on the same connection; only the first one drops it.
  #bench(replica: ReplicaState, connection: Promise<Database>, error: unknown): void {
    if (replica.connection !== connection) return;
    replica.connection = undefined;
    replica.benchedUntil = Date.now() + this.#benchMs;
    closeQuietly(connection);
    this.#onFailure(replica.name, error);
  }
}

function closeQuietly(connection: Promise<Database> | undefined): Promise<void> {
  return connection ? connection.then((db) => db.close()).catch(() => {}) : Promise.resolve();
}

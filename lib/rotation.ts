// Reads spread over replicas in turn (round robin), skipping any replica that fails.
// Unlike a plain cycle, a replica that errors or times out is benched for a while and the same
// read goes on to the next one; when every replica is benched the read goes to the fallback.
import { Database } from './db.ts';

export interface Replica {
  name: string;
  file: string;
}

interface ReplicaState extends Replica {
  connection?: Promise<Database>;
  benchedUntil: number;
}

export interface RotationOptions {
  // Asked before a replica's connection is (re)opened; false benches it like an error would.
  ready?: (replica: Replica) => Promise<boolean>;
  benchMs?: number;
  timeoutMs?: number;
  onFailure?: (replica: string, error: unknown) => void;
}

export class ReadRotation {
  readonly #replicas: ReplicaState[];
  readonly #fallback: { name: string; db: Database };
  readonly #ready: (replica: Replica) => Promise<boolean>;
  readonly #benchMs: number;
  readonly #timeoutMs: number;
  readonly #onFailure: (replica: string, error: unknown) => void;
  #next = 0;

  constructor(replicas: Replica[], fallback: { name: string; db: Database }, options: RotationOptions = {}) {
    this.#replicas = replicas.map((replica) => ({ ...replica, benchedUntil: 0 }));
    this.#fallback = fallback;
    this.#ready = options.ready ?? (async () => true);
    this.#benchMs = options.benchMs ?? 1000;
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#onFailure = options.onFailure ?? (() => {});
  }

  // Each read starts at the next replica in turn and tries every one at most once.
  async read<T>(query: (db: Database) => Promise<T>): Promise<{ value: T; served: string }> {
    const start = this.#next;
    this.#next = (start + 1) % this.#replicas.length;
    for (let offset = 0; offset < this.#replicas.length; offset++) {
      const replica = this.#replicas[(start + offset) % this.#replicas.length];
      if (replica.benchedUntil > Date.now()) continue;
      const connection = (replica.connection ??= this.#open(replica));
      try {
        const value = await withTimeout(connection.then(query), this.#timeoutMs);
        return { value, served: replica.name };
      } catch (error) {
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
    return Database.open(replica.file, { readonly: true });
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

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

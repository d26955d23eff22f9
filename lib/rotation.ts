// Reads spread over replicas in turn (round robin), skipping any replica that fails.
// Unlike a plain cycle, a replica that errors or times out is benched for a while and the same
// read goes on to the next one; when every replica is benched the read goes to the fallback.
import { Database } from './db.ts';

export interface Replica {
  name: string;
  file: string;
}

interface ReplicaState extends Replica {
  db?: Database;
  benchedUntil: number;
}

export interface RotationOptions {
  benchMs?: number;
  timeoutMs?: number;
  onFailure?: (replica: string, error: unknown) => void;
}

export class ReadRotation {
  readonly #replicas: ReplicaState[];
  readonly #fallback: { name: string; db: Database };
  readonly #benchMs: number;
  readonly #timeoutMs: number;
  readonly #onFailure: (replica: string, error: unknown) => void;
  #next = 0;

  constructor(replicas: Replica[], fallback: { name: string; db: Database }, options: RotationOptions = {}) {
    this.#replicas = replicas.map((replica) => ({ ...replica, benchedUntil: 0 }));
    this.#fallback = fallback;
    this.#benchMs = options.benchMs ?? 1000;
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#onFailure = options.onFailure ?? (() => {});
  }

  async read<T>(query: (db: Database) => Promise<T>): Promise<{ value: T; served: string }> {
    for (let tried = 0; tried < this.#replicas.length; tried++) {
      const replica = this.#replicas[this.#next];
      this.#next = (this.#next + 1) % this.#replicas.length;
      if (replica.benchedUntil > Date.now()) continue;
      try {
        replica.db ??= await Database.open(replica.file, { readonly: true });
        const value = await withTimeout(query(replica.db), this.#timeoutMs);
        return { value, served: replica.name };
      } catch (error) {
        this.#bench(replica, error);
      }
    }
    return { value: await query(this.#fallback.db), served: this.#fallback.name };
  }

  async close(): Promise<void> {
    await Promise.all(this.#replicas.map((replica) => replica.db?.close().catch(() => {})));
  }

  // A failed connection may point at a dead FUSE mount: drop it so the next try opens afresh.
  #bench(replica: ReplicaState, error: unknown): void {
    replica.benchedUntil = Date.now() + this.#benchMs;
    const db = replica.db;
    replica.db = undefined;
    db?.close().catch(() => {});
    this.#onFailure(replica.name, error);
  }
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

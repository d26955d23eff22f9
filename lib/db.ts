// A small promise wrapper over one sqlite3 connection, and the read rotation over replicas.
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFile } from 'node:fs/promises';
import sqlite3 from 'sqlite3';

export type Params = unknown[] | Record<string, unknown>;
export interface RunResult {
  changes: number;
  lastID: number;
}

export interface OpenOptions {
  readonly?: boolean;
  create?: boolean; // a missing file is created (default), unless readonly
  busyTimeoutMs?: number;
}

export class Database {
  readonly file: string;
  #connection: sqlite3.Database;
  // One connection runs one transaction at a time: every statement waits for the one before,
  // so a request's statements never land inside another request's transaction.
  #tail: Promise<unknown> = Promise.resolve();

  readonly #busyTimeoutMs: number;

  private constructor(file: string, connection: sqlite3.Database, busyTimeoutMs: number) {
    this.file = file;
    this.#connection = connection;
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  static open(file: string, options: OpenOptions = {}): Promise<Database> {
    const mode = options.readonly ? sqlite3.OPEN_READONLY : sqlite3.OPEN_READWRITE | (options.create === false ? 0 : sqlite3.OPEN_CREATE);
    return new Promise((resolve, reject) => {
      const connection = new sqlite3.Database(file, mode, (error) => {
        if (error) return reject(error);
        const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
        connection.configure('busyTimeout', busyTimeoutMs);
        resolve(new Database(file, connection, busyTimeoutMs));
      });
    });
  }

  get<T>(sql: string, params: Params = []): Promise<T | undefined> {
    return this.#serialized(() => this.#call<T | undefined>('get', sql, params));
  }

  all<T>(sql: string, params: Params = []): Promise<T[]> {
    return this.#serialized(() => this.#call<T[]>('all', sql, params));
  }

  run(sql: string, params: Params = []): Promise<RunResult> {
    return this.#serialized(() => this.#run(sql, params));
  }

  exec(sql: string): Promise<void> {
    return this.#serialized(() => this.#exec(sql));
  }

  async execFile(sqlFile: string): Promise<void> {
    await this.exec(await readFile(sqlFile, 'utf8'));
  }

  // BEGIN IMMEDIATE takes the write lock up front, so two processes never both read a state
  // and then both write on its strength; the second one waits its turn (#beginImmediate).
  transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.#serialized(async () => {
      await this.#beginImmediate();
      try {
        const tx: Transaction = {
          get: (sql, params = []) => this.#call('get', sql, params),
          all: (sql, params = []) => this.#call('all', sql, params),
          run: (sql, params = []) => this.#run(sql, params),
        };
        const result = await work(tx);
        await beforeCommit.getStore()?.(tx);
        await this.#exec('COMMIT');
        return result;
      } catch (error) {
        await this.#exec('ROLLBACK').catch(() => {});
        throw error;
      }
    });
  }

  // Waits for the write lock by trying again every millisecond, from JS. SQLite's own busy handler
  // sleeps 1, 2, 5, 10, ... then 100 ms between tries, so a lock that another process holds for
  // 2 ms could cost a waiter 100 ms (measured: p99 105 ms to get the lock, against 43 ms this way,
  // and 40% more writes per second over three instances). Then the busy timeout is set back.
  async #beginImmediate(): Promise<void> {
    const deadline = Date.now() + this.#busyTimeoutMs;
    this.#connection.configure('busyTimeout', 0);
    try {
      for (;;) {
        try {
          return await this.#exec('BEGIN IMMEDIATE');
        } catch (error) {
          if ((error as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      }
    } finally {
      this.#connection.configure('busyTimeout', this.#busyTimeoutMs);
    }
  }

  close(): Promise<void> {
    return this.#serialized(
      () => new Promise<void>((resolve, reject) => this.#connection.close((error) => (error ? reject(error) : resolve()))),
    );
  }

  #serialized<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(work, work);
    this.#tail = result.catch(() => {});
    return result;
  }

  #call<T>(method: 'get' | 'all', sql: string, params: Params): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#connection[method](sql, params, (error: Error | null, rows: T) => (error ? reject(error) : resolve(rows)));
    });
  }

  #run(sql: string, params: Params): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      this.#connection.run(sql, params, function (this: sqlite3.RunResult, error: Error | null) {
        if (error) return reject(error);
        resolve({ changes: this.changes, lastID: this.lastID });
      });
    });
  }

  #exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.#connection.exec(sql, (error) => (error ? reject(error) : resolve())));
  }
}

// Work that a request wants done in the same transaction as its own writes, whatever code runs
// them (lib/idempotency.ts records its key this way): set with beforeCommit.run(hook, ...).
export const beforeCommit = new AsyncLocalStorage<(tx: Transaction) => Promise<void>>();

export interface Transaction {
  get<T>(sql: string, params?: Params): Promise<T | undefined>;
  all<T>(sql: string, params?: Params): Promise<T[]>;
  run(sql: string, params?: Params): Promise<RunResult>;
}

// A database that can be read and written, whichever object holds the connection.
export interface Connection extends Transaction {
  readonly file: string;
}

export function isUniqueViolation(error: unknown): boolean {
  return error instanceof Error && /SQLITE_CONSTRAINT.*UNIQUE|UNIQUE constraint failed/.test(error.message);
}

export class TimeoutError extends Error {}

export function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

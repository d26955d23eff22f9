// The users database's LiteFS primary as the users service holds it: one connection, given up the
// moment the mount under it dies and opened again once the primary answers. When litefs is killed,
// every call on the open file fails (SQLITE_IOERR, SQLITE_CANTOPEN) for good, even after its
// supervisor has mounted a new litefs in the same place: only a new connection reaches the new mount.
// While the primary is away, calls fail at once with PrimaryAway (503, Retry-After): they never
// hang and never half-write (a transaction that fails is rolled back, or never committed). A call
// that hangs is given up after timeoutMs: that one may yet be carried out, and its 503 says so.
// With bin/hosts.sh the enrollment service holds its database on LiteFS the same way (`away`).
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { TimeoutError, withTimeout, type Database, type Params, type RunResult, type Connection, type Transaction } from './db.ts';
import { Problem } from './problem.ts';

export class PrimaryAway extends Problem {
  constructor(detail = 'the users database cannot be written right now (its primary is restarting): nothing was changed; try again shortly') {
    super(503, 'Service Unavailable', detail, { 'Retry-After': '1' });
  }
}

const HUNG =
  'the database did not answer in time: this change may or may not have been made; send it again with the same Idempotency-Key to learn which';

// What a connection whose file sits on a dead (or replaced) FUSE mount answers, and what opening
// one says while litefs is not mounted: the primary is away, not broken.
const LOST = /SQLITE_(IOERR|CANTOPEN|NOTADB|CORRUPT|PROTOCOL|READONLY)|ENOTCONN|not connected|is not a LiteFS mount/;
const isLost = (error: unknown) => error instanceof TimeoutError || LOST.test(String((error as Error)?.message));


export interface PrimaryOptions {
  file: string;
  // On a host that holds only a replica (bin/hosts.sh) the primary is on another host, out of reach:
  // every call answers PrimaryAway with this detail, and nothing is ever opened.
  elsewhere?: string;
  // What PrimaryAway says while the connection is lost (the users database's primary by default).
  away?: string;
  // Opens the primary's database; throws while it is not there (no live mount, no file). A reopen
  // (`create: false`) must never create the file.
  open: (options: { create: boolean }) => Promise<Database>;
  // A call that takes longer than this, its wait for earlier calls on the connection included,
  // counts as the primary being away (hung): long enough for a burst of writes queued behind
  // each other, short enough that nobody waits for ever.
  timeoutMs?: number;
  // How often a lost primary is tried again.
  retryMs?: number;
  // Where "primary connected" is said (stdout by default); losses and failures go to stderr.
  log?: (line: string) => void;
}

export class Primary implements Connection {
  readonly file: string;
  #db?: Database;
  #reconnecting = false;
  #attempt?: Promise<boolean>; // the open under way, which every caller shares
  #closed = false;
  #lastFailure = '';
  readonly #open: (options: { create: boolean }) => Promise<Database>;
  readonly #elsewhere?: string;
  readonly #away?: string;
  readonly #timeoutMs: number;
  readonly #retryMs: number;
  readonly #log: (line: string) => void;

  constructor(options: PrimaryOptions) {
    this.file = options.file;
    this.#open = options.open;
    this.#elsewhere = options.elsewhere;
    this.#away = options.away;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#retryMs = options.retryMs ?? 250;
    this.#log = options.log ?? ((line) => process.stdout.write(`${line}\n`));
  }

  // Connects now if it can; if the primary is away, the service starts anyway (logins need only a
  // replica) and the primary is tried again in the background. Any other failure (a database that
  // needs migrating, say) is thrown: the service must not start on it.
  async connect(): Promise<void> {
    if (this.#elsewhere) return;
    if (!(await this.#tryOpen({ first: true }))) this.#reconnect();
  }

  get available(): boolean {
    return this.#db !== undefined;
  }

  get<T>(sql: string, params?: Params): Promise<T | undefined> {
    return this.#use((db) => db.get<T>(sql, params));
  }

  all<T>(sql: string, params?: Params): Promise<T[]> {
    return this.#use((db) => db.all<T>(sql, params));
  }

  run(sql: string, params?: Params): Promise<RunResult> {
    return this.#use((db) => db.run(sql, params));
  }

  transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.#use((db) => db.transaction(work));
  }

  async close(): Promise<void> {
    this.#closed = true;
    const db = this.#db;
    this.#db = undefined;
    await db?.close().catch(() => {});
  }

  // Without a connection, a call first tries to open one (sharing any try under way) rather than
  // wait for the next background try: a primary back a moment ago may already hold what another
  // instance has just written there (a user registered a moment ago, say).
  async #use<T>(work: (db: Database) => Promise<T>): Promise<T> {
    if (this.#elsewhere) throw new PrimaryAway(this.#elsewhere);
    if (!this.#db) await this.#openOnce();
    const db = this.#db;
    if (!db) throw new PrimaryAway(this.#away);
    try {
      return await withTimeout(work(db), this.#timeoutMs);
    } catch (error) {
      if (!isLost(error)) throw error;
      this.#lose(db, error as Error);
      throw new PrimaryAway(error instanceof TimeoutError ? HUNG : this.#away);
    }
  }

  // Concurrent calls may fail on the same connection; only the first one gives it up.
  #lose(db: Database, error: Error): void {
    if (this.#db !== db) return;
    this.#db = undefined;
    process.stderr.write(`primary lost (${error.message}): writes answer 503 until it is back\n`);
    // A call stuck on a hung mount keeps the old connection busy: it is closed after that call.
    db.close().catch(() => {});
    this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    if (this.#reconnecting) return;
    this.#reconnecting = true;
    while (!this.#closed && !(await this.#openOnce())) await sleep(this.#retryMs);
    this.#reconnecting = false;
  }

  #openOnce(): Promise<boolean> {
    this.#attempt ??= this.#tryOpen().finally(() => (this.#attempt = undefined));
    return this.#attempt;
  }

  // The first open may create the database (a new cluster); a reopen never does. The first one
  // also throws what is not the primary being away.
  async #tryOpen({ first = false } = {}): Promise<boolean> {
    try {
      const db = await withTimeout(this.#open({ create: first }), this.#timeoutMs);
      if (this.#closed) {
        await db.close();
        return true;
      }
      this.#db = db;
      this.#lastFailure = '';
      this.#log(`primary connected: ${this.file}`);
      return true;
    } catch (error) {
      if (first && !isLost(error)) throw error;
      // Said once per kind of failure, not every retryMs.
      const reason = (error as Error).message;
      if (reason !== this.#lastFailure) process.stderr.write(`primary not available yet: ${reason}\n`);
      this.#lastFailure = reason;
      return false;
    }
  }
}

// Per-account brute-force limit: after a few failed logins in a row, an account waits before the
// next try, twice as long each time, never longer than the cap, so that an attacker gets few guesses
// per hour and a real user is never locked out for long once the attack stops. The record of an
// account is kept on the users database's primary (login_failures), so every users instance and a
// restarted one see the same count; this file holds the rule, and a copy in memory that holds while
// the primary is away (then each instance counts its own). The gateway limits each address too.
export interface LockoutRules {
  freeFailures: number; // failures in a row before any wait
  firstWaitSeconds: number; // the wait after the first failure past those, doubling from there
  maxWaitSeconds: number;
  forgetAfterSeconds: number; // a quiet account starts over
}

export interface FailureRecord {
  failures: number;
  lockedUntil: number; // unix milliseconds
  lastFailure: number; // unix milliseconds
}

// A record that has been quiet long enough (and whose wait is over) counts as none.
export function current(record: FailureRecord | undefined, rules: LockoutRules, now = Date.now()): FailureRecord | undefined {
  if (record && now - record.lastFailure > rules.forgetAfterSeconds * 1000 && now >= record.lockedUntil) return undefined;
  return record;
}

// Seconds an account with this record must still wait before a try, or 0.
export function waitSeconds(record: FailureRecord | undefined, rules: LockoutRules, now = Date.now()): number {
  const live = current(record, rules, now);
  return live ? Math.max(0, Math.ceil((live.lockedUntil - now) / 1000)) : 0;
}

export function afterFailure(record: FailureRecord | undefined, rules: LockoutRules, now = Date.now()): FailureRecord {
  const failures = (current(record, rules, now)?.failures ?? 0) + 1;
  const past = failures - rules.freeFailures;
  const wait = past > 0 ? Math.min(rules.maxWaitSeconds, rules.firstWaitSeconds * 2 ** (past - 1)) : 0;
  return { failures, lockedUntil: past > 0 ? now + wait * 1000 : 0, lastFailure: now };
}

// Accounts remembered in memory at most (made-up usernames count too): the oldest are forgotten first.
const MAX_ACCOUNTS = 100_000;

export class Lockout {
  readonly #rules: LockoutRules;
  readonly #accounts = new Map<string, FailureRecord>();

  constructor(rules: LockoutRules) {
    this.#rules = rules;
  }

  waitSeconds(username: string, now = Date.now()): number {
    return waitSeconds(this.#accounts.get(username), this.#rules, now);
  }

  failed(username: string, now = Date.now()): void {
    const record = afterFailure(this.#accounts.get(username), this.#rules, now);
    this.#accounts.delete(username); // re-inserted last: the map stays in order of last failure
    this.#accounts.set(username, record);
    if (this.#accounts.size > MAX_ACCOUNTS) this.#accounts.delete(this.#accounts.keys().next().value!);
  }

  succeeded(username: string): void {
    this.#accounts.delete(username);
  }
}

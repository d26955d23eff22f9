// Per-account brute-force limit: after a few failed logins in a row, an account waits before the
// next try, twice as long each time, never longer than the cap, so that an attacker gets few guesses
// per hour and a real user is never locked out for long once the attack stops. In memory: the users
// service is one process, and a restart forgives (the gateway limits each client address too).
export interface LockoutRules {
  freeFailures: number; // failures in a row before any wait
  firstWaitSeconds: number; // the wait after the first failure past those, doubling from there
  maxWaitSeconds: number;
  forgetAfterSeconds: number; // a quiet account starts over
}

// Accounts remembered at most (made-up usernames count too): the oldest are forgotten first.
const MAX_ACCOUNTS = 100_000;

interface Account {
  failures: number;
  lockedUntil: number;
  lastFailure: number;
}

export class Lockout {
  readonly #rules: LockoutRules;
  readonly #accounts = new Map<string, Account>();

  constructor(rules: LockoutRules) {
    this.#rules = rules;
  }

  // Seconds this account must still wait before a try, or 0.
  waitSeconds(username: string, now = Date.now()): number {
    const account = this.#current(username, now);
    return account ? Math.max(0, Math.ceil((account.lockedUntil - now) / 1000)) : 0;
  }

  failed(username: string, now = Date.now()): void {
    const account = this.#current(username, now) ?? { failures: 0, lockedUntil: 0, lastFailure: 0 };
    account.failures++;
    account.lastFailure = now;
    const past = account.failures - this.#rules.freeFailures;
    if (past > 0) {
      const wait = Math.min(this.#rules.maxWaitSeconds, this.#rules.firstWaitSeconds * 2 ** (past - 1));
      account.lockedUntil = now + wait * 1000;
    }
    this.#accounts.delete(username); // re-inserted last: the map stays in order of last failure
    this.#accounts.set(username, account);
    if (this.#accounts.size > MAX_ACCOUNTS) this.#accounts.delete(this.#accounts.keys().next().value!);
  }

  succeeded(username: string): void {
    this.#accounts.delete(username);
  }

  #current(username: string, now: number): Account | undefined {
    const account = this.#accounts.get(username);
    if (account && now - account.lastFailure > this.#rules.forgetAfterSeconds * 1000 && now >= account.lockedUntil) {
      this.#accounts.delete(username);
      return undefined;
    }
    return account;
  }
}

// Waiting for what a test means (a log line, a state) instead of sleeping for a while: every wait
// has a deadline, and fails saying what it waited for.
import { setTimeout as sleep } from 'node:timers/promises';

type Falsy = undefined | null | false | '' | 0;

// Asks `check` again until it answers something truthy, which it returns.
export async function waitFor<T>(what: string, check: () => T | Falsy | Promise<T | Falsy>, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}, in vain`);
    await sleep(everyMs);
  }
}

// The lines of a growing log, from index `from` on, that match `pattern`, once there are `count`.
export function linesMatching(log: string[], pattern: RegExp, { from = 0, count = 1, timeoutMs = 10_000 } = {}): Promise<string[]> {
  return waitFor(
    `${count} log line(s) matching ${pattern}`,
    () => {
      const found = log.slice(from).filter((line) => pattern.test(line));
      return found.length >= count && found;
    },
    timeoutMs,
  );
}

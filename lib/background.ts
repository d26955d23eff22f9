// Work a service repeats between requests (forgetting rows that can no longer matter), until the
// service closes: a closed service leaves no timer behind.
export function repeatUntilClosed(closed: AbortSignal, everyMs: number, work: () => Promise<unknown>, what: string): void {
  const timer = setInterval(() => work().catch((error: Error) => console.error(`${what} failed: ${error.message}`)), everyMs);
  timer.unref();
  closed.addEventListener('abort', () => clearInterval(timer), { once: true });
}

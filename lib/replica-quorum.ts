// On a host without the primary (bin/hosts.sh): may this host's replica answer? While it is
// connected to the primary (LiteFS keeps a `.primary` file in its mount, and has heard from the
// primary in the last 3 s), yes. Once it has lost the primary it may be behind, and this host may be
// the one cut off from the rest (a partition): it answers only if another host's replica has lost
// the primary too. Then the primary's host is away,
// and the replicas hold all that is left. A peer that does not answer counts against: from here, a
// dead peer and a partition look the same. The peers' verdict is kept for a second.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type Koa from 'koa';
import { isConnectedSecondary } from './litefs.ts';
import { withTimeout } from './db.ts';
import { Problem } from './problem.ts';

// The primary sends a heartbeat every second, and LiteFS's `.lag` file tells how long ago the last
// word from it came. Cut off by a partition (packets dropped, nothing closed), a replica keeps its
// `.primary` file until TCP keepalive gives up (about 150 s, measured), but its lag grows from the
// first second on.
export const MAX_LAG_MS = 3000;

// A check of a FUSE mount whose litefs hangs could block: after 500 ms it counts as lost.
export function replicaConnected(file: string): () => Promise<boolean> {
  const lag = path.join(path.dirname(file), '.lag');
  const check = async () => (await isConnectedSecondary({ file })) && Number((await readFile(lag, 'utf8')).trim()) < MAX_LAG_MS;
  return () => withTimeout(check(), 500).catch(() => false);
}

// 503 while this host's replica may not answer (the gateway sends the request to another host); no
// check without a replica of its own.
export async function refuseIfStale(mayAnswer?: () => Promise<boolean>): Promise<void> {
  if (mayAnswer && !(await mayAnswer())) {
    throw new Problem(503, 'Service Unavailable', "this host's replica has lost the primary and may be behind: try again shortly", { 'Retry-After': '1' });
  }
}

// The same for every request.
export function refuseWhileStale(mayAnswer?: () => Promise<boolean>): Koa.Middleware {
  return async (_ctx, next) => {
    await refuseIfStale(mayAnswer);
    await next();
  };
}

export function replicaMayAnswer(connected: () => Promise<boolean>, peers: string[], { timeoutMs = 300, keepMs = 1000 } = {}): () => Promise<boolean> {
  let verdict: { at: number; value: Promise<boolean> } | undefined;
  const aPeerLostThePrimary = async () => {
    const answers = await Promise.all(
      peers.map((peer) =>
        fetch(new URL('/replica', peer), { signal: AbortSignal.timeout(timeoutMs) })
          .then((reply) => (reply.ok ? (reply.json() as Promise<{ connected: boolean }>) : undefined))
          .catch(() => undefined),
      ),
    );
    return answers.some((answer) => answer?.connected === false);
  };
  return async () => {
    if (await connected()) return true;
    if (!verdict || Date.now() - verdict.at > keepMs) verdict = { at: Date.now(), value: aPeerLostThePrimary() };
    return verdict.value;
  };
}

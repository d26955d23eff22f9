// Load through the gateway, as clients make it, tallied per kind of request: logins of seeded
// students, catalogue reads, enroll-then-drop of two students, and a registration every so often
// followed at once by a login of the new account. bin/kill-under-load.ts and the hosts' test
// (test/hosts.test.ts) make their deaths under it.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEV_PASSWORD, STUDENTS } from '../lib/roster.ts';

const LOAD_PASSWORD = 'load password';

export interface Tally {
  requests: number;
  failures: number; // answers the clients should never see (and connection errors)
  refused: number; // 503 with Retry-After: the write was not done, and the client was told when to retry
  refusedWithoutRetryAfter: number;
  replayed: number; // answers given again for an Idempotency-Key (the first one's instance died), or said lost
  resent: number; // writes the client sent again with their key after a closed connection
  slowestMs: number;
  longestOutageMs: number;
  examples: string[]; // the first few failures, as the client saw them
  outageSince?: number;
}

export type Tallies = Record<string, Omit<Tally, 'outageSince'>>;

export interface Load {
  since(): number; // ms since the load started
  // The tallies since the last call (or the start); the next ones start from nothing.
  takeTallies(): Tallies;
  registered: string[]; // every account registered (201) so far
  stop(): Promise<void>;
}

// Writes carry an Idempotency-Key, as a careful client's do: the gateway may then send one again
// to another instance when the one handling it dies (lib/idempotency.ts).
// A write whose connection is closed with no answer (HAProxy does that when the instance handling
// it dies, on a reused client connection) is sent again with the same key, up to three times after
// 0.1, 0.5 and 1.5 s, as a careful client does, and counted as resent.
async function send(url: string, method: string, body?: unknown, token?: string): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  if (method !== 'GET') headers['idempotency-key'] = randomUUID();
  const once = async (resent: boolean): Promise<Reply> => {
    const reply = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    return { status: reply.status, retryAfter: reply.headers.get('retry-after'), replayed: reply.headers.has('idempotent-replayed'), resent, text: await reply.text() };
  };
  const pauses = [100, 500, 1500];
  for (let attempt = 0; ; attempt++) {
    try {
      return await once(attempt > 0);
    } catch (error) {
      if (method === 'GET' || attempt === pauses.length) throw error;
      await sleep(pauses[attempt]);
    }
  }
}

interface Reply {
  status: number;
  retryAfter: string | null;
  replayed: boolean;
  resent: boolean;
  text: string;
}

export async function startLoad(gateway: string, { registerEveryMs = 500 } = {}): Promise<Load> {
  const started = performance.now();
  const since = () => Math.round(performance.now() - started);
  let tallies: Record<string, Tally> = {};
  const tally = (kind: string) => (tallies[kind] ??= { requests: 0, failures: 0, refused: 0, refusedWithoutRetryAfter: 0, replayed: 0, resent: 0, slowestMs: 0, longestOutageMs: 0, examples: [] });

  // One request of a kind: `ok` lists the statuses that are a success for it; a 503 is a refusal.
  async function measure(kind: string, ok: number[], request: () => ReturnType<typeof send>) {
    const t = tally(kind);
    const sent = performance.now();
    const reply = await request().catch((error: Error) => ({ status: 0, retryAfter: null, replayed: false, resent: false, text: String(error.cause ?? error.message) }));
    const now = performance.now();
    t.requests++;
    if (reply.replayed) t.replayed++;
    if (reply.resent) t.resent++;
    t.slowestMs = Math.max(t.slowestMs, Math.round(now - sent));
    // A repeat whose first try was carried out but whose answer died with its instance (409, see
    // lib/idempotency.ts) was carried out: counted with the replayed answers.
    const carriedOut = reply.status === 409 && /was carried out/.test(reply.text);
    if (carriedOut) t.replayed++;
    if (ok.includes(reply.status) || carriedOut) {
      if (t.outageSince !== undefined) t.longestOutageMs = Math.max(t.longestOutageMs, Math.round(now - t.outageSince));
      t.outageSince = undefined;
      return reply;
    }
    t.outageSince ??= sent;
    if (reply.status === 503) {
      t.refused++;
      if (!reply.retryAfter) t.refusedWithoutRetryAfter++;
    } else {
      t.failures++;
      if (t.examples.length < 5) t.examples.push(`${since()} ms: ${reply.status} ${reply.text.slice(0, 200)}`);
    }
    return reply;
  }

  const login = (username: string, password = DEV_PASSWORD) => send(`${gateway}/login`, 'POST', { username, password });
  const first = await login(STUDENTS[0]);
  if (first.status !== 200) throw new Error(`the formation does not log in ${STUDENTS[0]}: ${first.status} ${first.text}`);
  const readToken = JSON.parse(first.text).access_token as string;
  const catalogue = JSON.parse((await send(`${gateway}/classes`, 'GET', undefined, readToken)).text) as { classes: { sections: { id: number; seats_left: number }[] }[] };
  const roomy = catalogue.classes.flatMap((c) => c.sections).filter((section) => section.seats_left >= 5);

  let running = true;
  const loops: Promise<void>[] = [];
  const loop = (body: (turn: number) => Promise<void>) =>
    loops.push(
      (async () => {
        for (let turn = 0; running; turn++) await body(turn);
      })(),
    );
  // Logins of seeded students, catalogue reads, enroll-then-drop of two students.
  for (let worker = 0; worker < 3; worker++) loop((turn) => measure('login', [200], () => login(STUDENTS[1 + ((worker * 37 + turn) % 60)])).then(() => {}));
  for (let worker = 0; worker < 3; worker++) loop(() => measure('read', [200], () => send(`${gateway}/classes`, 'GET', undefined, readToken)).then(() => {}));
  for (let worker = 0; worker < 2 && worker < roomy.length; worker++) {
    const student = STUDENTS[100 + worker];
    const token = JSON.parse((await login(student)).text).access_token as string;
    const section = roomy[worker].id;
    loop(async () => {
      await measure('enroll', [201, 202, 409], () => send(`${gateway}/me/enrollments`, 'POST', { section_id: section }, token));
      await measure('drop', [204, 404], () => send(`${gateway}/me/enrollments/${section}`, 'DELETE', undefined, token));
    });
  }
  // A registration every so often, and at once a login of the new account.
  const registered: string[] = [];
  const run = `k${Date.now().toString(36)}`;
  loop(async (turn) => {
    const username = `${run}-${turn}`;
    const reply = await measure('register', [201], () => send(`${gateway}/users`, 'POST', { username, password: LOAD_PASSWORD, roles: ['Student'] }));
    if (reply.status === 201 || /was carried out/.test(reply.text)) {
      registered.push(username);
      await measure('login just registered', [200], () => login(username, LOAD_PASSWORD));
    }
    await sleep(registerEveryMs);
  });

  function takeTallies(): Tallies {
    const taken = tallies;
    tallies = {};
    return Object.fromEntries(Object.entries(taken).map(([kind, { outageSince, ...t }]) => [kind, t]));
  }
  async function stop(): Promise<void> {
    running = false;
    await Promise.all(loops);
  }
  return { since, takeTallies, registered, stop };
}

// The accounts of `usernames` that cannot log in (registered with the load's password).
export async function cannotLogIn(gateway: string, usernames: string[]): Promise<string[]> {
  const refused: string[] = [];
  for (const username of usernames) {
    if ((await send(`${gateway}/login`, 'POST', { username, password: LOAD_PASSWORD })).status !== 200) refused.push(username);
  }
  return refused;
}

export function printTallies(kinds: Tallies, out: (line: string) => void = console.log): void {
  out('kind                   requests  failed  503+Retry-After  replayed  resent  slowest ms  longest outage ms');
  for (const [kind, t] of Object.entries(kinds)) {
    const columns = [[t.requests, 8], [t.failures, 6], [t.refused, 15], [t.replayed, 8], [t.resent, 6], [t.slowestMs, 10], [t.longestOutageMs, 17]] as const;
    out(`${kind.padEnd(22)} ${columns.map(([value, width]) => String(value).padStart(width)).join('  ')}`);
    for (const example of t.examples) out(`    ${example}`);
  }
}

// Logins and reads must never fail; nor may a refusal come without Retry-After.
export function tallyProblems(kinds: Tallies): string[] {
  const found: string[] = [];
  for (const kind of ['login', 'read', 'login just registered']) {
    const t = kinds[kind];
    if (t && t.failures + t.refused) found.push(`${t.failures + t.refused} ${kind} requests failed`);
  }
  for (const [kind, t] of Object.entries(kinds)) {
    if (t.refusedWithoutRetryAfter) found.push(`${t.refusedWithoutRetryAfter} ${kind} 503s without Retry-After`);
  }
  return found;
}

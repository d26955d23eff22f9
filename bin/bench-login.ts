// usage: bin/node bin/bench-login.ts   (prints figures; asserts nothing)
//
// Measures what a burst of logins does to a users service of its own (a throw-away database and
// key, on a free port): while 10 logins hash at the configured PBKDF2 iterations (PBKDF2_ITERATIONS),
// /health is asked every 10 ms and its latency recorded.
import { config } from '../lib/config.ts';
import { hashPassword } from '../lib/password.ts';
import { call, quantile, startUsers } from '../harness/support.ts';
import { commandLine } from './cli.ts';

commandLine(import.meta.filename, {});
const iterations = config.users.pbkdf2Iterations;
const { service } = await startUsers({ iterations });

try {
  let started = performance.now();
  await hashPassword('one hash', iterations);
  const hashMs = performance.now() - started;

  const credentials = { username: 'bench', password: 'bench-password' };
  await call(`${service.url}/users`, { body: { ...credentials, roles: ['Student'] } });

  const healthMs: number[] = [];
  let loginsDone = false;
  started = performance.now();
  const logins = Promise.all(Array.from({ length: 10 }, () => call(`${service.url}/login`, { body: credentials })));
  const probe = (async () => {
    while (!loginsDone) {
      const asked = performance.now();
      await call(`${service.url}/health`);
      healthMs.push(performance.now() - asked);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  const replies = await logins;
  const loginsMs = performance.now() - started;
  loginsDone = true;
  await probe;

  const at = (q: number) => quantile(healthMs, q).toFixed(1);
  console.log(`PBKDF2-SHA256 at ${iterations} iterations: one hash ${hashMs.toFixed(0)} ms`);
  console.log(`10 concurrent logins: ${loginsMs.toFixed(0)} ms in all, statuses ${[...new Set(replies.map((r) => r.status))].join(',')}`);
  console.log(`/health during them: ${healthMs.length} answers, p50 ${at(0.5)} ms, max ${at(1)} ms`);
} finally {
  await service.stop();
}

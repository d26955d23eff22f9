// The whole system as `npm start` runs it: the Procfile under the real Foreman, with the real
// HAProxy gateway, LiteFS and services. Every request goes through the gateway unless it says not.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeProtectedHeader } from 'jose';
import { ROOT } from '../lib/config.ts';
import { DEV_PASSWORD } from '../lib/roster.ts';
import { startFormation, steadyLoad, untilAllUp, type Formation } from './formation.ts';
import { call, REFRESH_AUDIENCE } from '../harness/support.ts';
import { linesMatching, waitFor } from '../harness/wait.ts';

describe('the formation under Foreman, through the HAProxy gateway', function () {
  this.timeout(180_000);
  let formation: Formation;
  let studentToken: string;

  before(async () => {
    formation = await startFormation();
  });
  after(() => formation?.stop());

  const login = async (username: string) => {
    const reply = await call(`${formation.gateway}/login`, { body: { username, password: DEV_PASSWORD } });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    return reply.body as { access_token: string; refresh_token: string };
  };
  const classes = (token: string) => call(`${formation.gateway}/classes`, { token }).then((reply) => reply.status);

  it('seeds the users database through the primary: a seeded student logs in through the gateway', async () => {
    const tokens = await login('student001');
    const { claims, header } = await formation.keys.decode(tokens.access_token);
    assert.equal(header.kid, formation.keys.kid);
    assert.deepEqual(claims.roles, ['Student']);
    studentToken = tokens.access_token;
  });

  it('names the LiteFS replica that served each login', async () => {
    await linesMatching(formation.log, /users\.\d\s+\| POST \/login 200 \d+ms user=student001 replica=secondary[12]/);
  });

  it('round-robins 30 requests exactly 10/10/10, as the instances\' own lines in Foreman\'s log show', async () => {
    const seen = formation.log.length;
    for (let request = 0; request < 30; request++) assert.equal(await classes(studentToken), 200);
    const line = /^\S+ (enrollment\.\d)\s+\| GET \/classes 200 \d+ms user=student001$/;
    const served: Record<string, number> = {};
    for (const [, instance] of (await linesMatching(formation.log, line, { from: seen, count: 30 })).map((found) => line.exec(found)!)) {
      served[instance] = (served[instance] ?? 0) + 1;
    }
    assert.deepEqual(served, { 'enrollment.1': 10, 'enrollment.2': 10, 'enrollment.3': 10 });
    await linesMatching(formation.log, /gateway\.1\s+\| 127\.0\.0\.1 "GET \/classes" enrollment\/e2 200 \d+ ms sub=student001/, { from: seen });
  });

  it('bin/smoke.sh passes against it', async () => {
    const smoke = spawnSync('bash', ['bin/smoke.sh', formation.gateway], { cwd: ROOT, env: formation.env, encoding: 'utf8' });
    assert.equal(smoke.status, 0, smoke.stdout + smoke.stderr);
    assert.match(smoke.stdout, /^smoke: \d+ passed, 0 failed$/m);
  });

  it('refuses every token the services would refuse, with problem JSON, before it reaches an instance', async () => {
    const { keys } = formation;
    const now = Math.floor(Date.now() / 1000);
    const refused = {
      'no exp': await keys.sign({ sub: 'student001', roles: ['Student'], exp: undefined }),
      'expired': await keys.accessToken('student001', ['Student'], { iat: now - 120, exp: now - 1 }),
      'nbf in the future': await keys.accessToken('student001', ['Student'], { nbf: now + 3600 }),
      'iat in the future': await keys.accessToken('student001', ['Student'], { iat: now + 3600 }),
      'numeric sub': await keys.accessToken(42 as unknown as string, ['Student']),
      'array aud': await keys.accessToken('student001', ['Student'], { aud: ['enrollment-gateway', 'elsewhere'] }),
      'other issuer': await keys.accessToken('student001', ['Student'], { iss: 'someone-else' }),
      'refresh token': await keys.sign({ sub: 'student001', aud: REFRESH_AUDIENCE }),
      'unknown kid': await keys.sign({ sub: 'student001', roles: ['Student'] }, { kid: 'no-such-key' }),
      'not a JWT': 'not.a.jwt',
    };
    const seen = formation.log.length;
    for (const [name, token] of Object.entries(refused)) {
      const reply = await call(`${formation.gateway}/classes`, { token });
      assert.equal(reply.status, 401, `${name}: ${JSON.stringify(reply.body)}`);
      assert.match(reply.headers.get('content-type')!, /^application\/problem\+json/, name);
      assert.equal(reply.body.status, 401, name);
    }
    // A roles claim that is not a list holds no role the gateway can find.
    const rolesAsText = await keys.accessToken('student001', 'Student' as unknown as string[]);
    assert.equal((await call(`${formation.gateway}/classes`, { token: rolesAsText })).status, 403);
    // Three requests that pass, one to each instance (round robin): once each instance has logged
    // its own, it has logged anything that reached it before.
    for (let instance = 0; instance < 3; instance++) {
      assert.equal((await call(`${formation.gateway}/auto-enrollment`, { token: studentToken })).status, 200);
    }
    const passed = await linesMatching(formation.log, /enrollment\.\d\s+\| GET \/auto-enrollment 200 \d+ms user=student001$/, { from: seen, count: 3 });
    assert.equal(new Set(passed.map((line) => /enrollment\.\d/.exec(line)![0])).size, 3, passed.join('\n'));
    assert.ok(!formation.log.slice(seen).some((line) => /enrollment\.\d\s+\| GET \/classes/.test(line)), 'no refused request reached an instance');
  });

  it('checks each route\'s roles at the gateway whatever the spelling: 403, or 404 where Koa has no route either', async () => {
    const instructor = await formation.keys.accessToken('prof.alvarez', ['Instructor']);
    const expectations: [string, string, string, number][] = [
      ['GET', '/me/sections', studentToken, 403],
      ['GET', '/ME/Sections/', studentToken, 403],
      ['GET', '//me/sections', studentToken, 404],
      ['GET', '/me//sections', studentToken, 404],
      ['GET', '/me/sections//', studentToken, 404],
      ['POST', '/Classes/', studentToken, 403],
      ['PUT', '/AUTO-ENROLLMENT', instructor, 403],
      ['DELETE', '/sections/1/students/student001', studentToken, 403],
      ['GET', '/sections/1/Students', studentToken, 403],
      ['POST', '/me/enrollments', instructor, 403],
      ['PATCH', '/classes', studentToken, 405],
      ['GET', '/me/sections', instructor, 200],
    ];
    for (const [method, path, token, status] of expectations) {
      const reply = await rawRequest(formation.gateway, method, path, token);
      assert.equal(reply.status, status, `${method} ${path}: ${reply.body}`);
    }
  });

  it('bin/loadtest.sh runs every phase and writes its record and picture (a short run: figures come from npm run loadtest)', async () => {
    const out = path.join(path.dirname(formation.logFile), 'loadtest');
    const run = await runScript('bin/loadtest.ts', ['--duration', '2', '--connections', '4', '--log', formation.logFile, '--out', out], formation.env);
    assert.ok(run.status === 0 || run.status === 1, run.output);
    const [record] = (await readdir(out)).filter((file) => file.endsWith('.json'));
    const report = JSON.parse(await readFile(path.join(out, record), 'utf8'));
    assert.deepEqual(report.phases.map((phase: { name: string }) => phase.name.split(':')[0].split(' (')[0]), [
      'reads through the gateway',
      'reads straight to the three instances',
      'reads straight to one instance',
      'logins through the gateway',
      'write mix through the gateway',
    ]);
    for (const phase of report.phases) {
      assert.ok(phase.requests > 0, phase.name);
      assert.equal(phase.errors, 0, phase.name);
      assert.equal(phase.unexpected, 0, `${phase.name}: ${JSON.stringify(phase.statuses)}`);
    }
    assert.deepEqual(Object.keys(report.phases[0].spread).sort(), ['enrollment.1', 'enrollment.2', 'enrollment.3']);
    assert.deepEqual(report.brokenRules, []);
    assert.match(await readFile(path.join(out, record.replace('.json', '.svg')), 'utf8'), /^<svg[^]*enrollment\.1[^]*<\/svg>\s*$/);
    assert.match(run.output, /targets:/);
  });

  it('gives forged identity headers nothing: the token alone says who calls', async () => {
    const forged = { 'X-Auth-User': 'registrar', 'X-Auth-Role': 'Registrar' };
    assert.equal((await call(`${formation.gateway}/classes`, { headers: forged })).status, 401);
    const body = { department: 'FORGE', course_code: '1', title: 'Forged' };
    assert.equal((await call(`${formation.gateway}/classes`, { token: studentToken, headers: forged, body })).status, 403);
    assert.equal((await call(`${formation.instances[0]}/classes`, { token: studentToken, headers: forged, body })).status, 403);
  });

  it('loses no GET while an enrollment instance is SIGKILLed under load; the supervisor restarts it and it gets its share again', async () => {
    const victim = formation.pidOf('enrollment.2', /^node enrollment\.ts/);
    const stop = sleep(6000);
    const load = steadyLoad(() => classes(studentToken), 4, stop);
    await sleep(1000);
    process.kill(victim, 'SIGKILL');
    const statuses = await load;
    assert.deepEqual(Object.keys(statuses), ['200'], JSON.stringify(statuses));
    console.log(`      ${statuses['200']} GETs during the kill, all 200`);
    await linesMatching(formation.log, /enrollment\.2\s+\| supervise: enrollment died \(killed by KILL\)/);
    await untilAllUp(formation);
    assert.notEqual(formation.pidOf('enrollment.2', /^node enrollment\.ts/), victim);
    const before = await formation.served();
    for (let request = 0; request < 30; request++) assert.equal(await classes(studentToken), 200);
    const after = await formation.served();
    assert.deepEqual(Object.fromEntries(Object.keys(after).map((server) => [server, after[server] - before[server]])), { e1: 10, e2: 10, e3: 10 });
  });

  it('rotates the signing key under load (bin/mkjwks --rotate reloads the gateway): no request fails, old and new tokens both pass', async () => {
    const oldToken = studentToken;
    let stopLoad = () => {};
    const stop = new Promise<void>((resolve) => (stopLoad = resolve));
    const load = steadyLoad(() => classes(oldToken), 4, stop);
    await sleep(1000);
    const rotated = await runScript('bin/mkjwks.ts', ['--rotate'], formation.env);
    assert.equal(rotated.status, 0, rotated.output);
    assert.match(rotated.output, /the gateway reloaded/);
    // The users service looks at its key file once a second.
    const newToken = await waitFor('the users service to sign with the new key', async () => {
      const { access_token } = await login('student001');
      return decodeProtectedHeader(access_token).kid !== formation.keys.kid && access_token;
    }, 10_000, 200);
    const newLoad = steadyLoad(() => classes(newToken), 2, stop);
    await sleep(3000);
    stopLoad();
    const statuses = await load;
    const newStatuses = await newLoad;
    assert.deepEqual(Object.keys(statuses), ['200'], `old token: ${JSON.stringify(statuses)}`);
    assert.deepEqual(Object.keys(newStatuses), ['200'], `new token: ${JSON.stringify(newStatuses)}`);
    console.log(`      during the rotation: ${statuses['200']} requests with the old token, ${newStatuses['200']} with the new one, all 200`);
  });

  it('survives a LiteFS secondary killed three times under login load: every login succeeds, the supervisor brings it back', async () => {
    const latencies: number[] = [];
    const stop = (async () => {
      for (let kill = 0; kill < 3; kill++) {
        await sleep(2500);
        process.kill(formation.pidOf('secondary1.1', /litefs mount/), 'SIGKILL');
      }
      await sleep(2500);
    })();
    const statuses = await steadyLoad(
      async () => {
        const sent = performance.now();
        const reply = await call(`${formation.gateway}/login`, { body: { username: 'student002', password: DEV_PASSWORD } });
        latencies.push(performance.now() - sent);
        return reply.status;
      },
      4,
      stop,
    );
    assert.deepEqual(Object.keys(statuses), ['200'], JSON.stringify(statuses));
    console.log(`      ${statuses['200']} logins through 3 kills, all 200, slowest ${Math.max(...latencies).toFixed(0)} ms`);
    assert.ok(Math.max(...latencies) < 5000);
    const death = /secondary1\.1\s+\| supervise: litefs-secondary1 died \(killed by KILL\)/;
    await linesMatching(formation.log, death, { count: 3 });
    assert.equal(formation.log.filter((line) => death.test(line)).length, 3, formation.log.join('\n'));
    // Back after its supervisor's backoff (0.5, 1, then 2 s), it serves its share of logins again.
    const seen = formation.log.length;
    await waitFor('secondary1 to serve a login again', async () => {
      await login('student002');
      return formation.log.slice(seen).some((line) => /users\.\d\s+\| POST \/login 200 .* replica=secondary1$/.test(line));
    }, 20_000, 100);
  });
});

// A request exactly as written (no URL normalisation, unlike fetch): status and body.
async function rawRequest(base: string, method: string, path: string, token: string): Promise<{ status: number; body: string }> {
  const curl = spawnSync('curl', ['-s', '--path-as-is', '-X', method, '-H', `Authorization: Bearer ${token}`, '-w', '\n%{http_code}', `${base}${path}`], { encoding: 'utf8' });
  const lines = curl.stdout.trimEnd().split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n') };
}

function runScript(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, env });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('exit', (status) => resolve({ status, output }));
  });
}

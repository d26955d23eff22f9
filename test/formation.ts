// The whole formation from the Procfile under the real Foreman, as `npm start` runs it (keys made by
// bin/mkjwks, the enrollment seed, three LiteFS nodes, the users service, three enrollment
// instances, the HAProxy gateway), on ports and directories of the test's own.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from '../lib/config.ts';
import { call, isRunning, randomBasePort, tempDir, testKeysFrom, type TestKeys } from '../harness/support.ts';

export const FORMATION = 'users=2,enrollment=3,primary=1,secondary1=1,secondary2=1,gateway=1,litestream=1,users-backup=1';

export interface Formation {
  basePort: number;
  gateway: string; // the gateway's URL
  instances: string[]; // the three enrollment instances' URLs, straight (bypassing the gateway)
  users: string[]; // the two users instances' URLs, straight
  env: NodeJS.ProcessEnv;
  keys: TestKeys; // the formation's own signing key, read from the file bin/mkjwks wrote
  log: string[]; // Foreman's output, line by line
  logFile: string; // the same, as npm start writes it to var/formation.log
  // The pid of what a Procfile line runs (e.g. 'enrollment.2'): its supervisor's child if supervised.
  pidOf(process: string, command: RegExp): number;
  // Per-server request counts from the gateway's stats page.
  served(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

// `settings` override the environment the formation runs with (e.g. the login limits).
export async function startFormation(settings: Record<string, string> = {}): Promise<Formation> {
  const dir = await tempDir('formation');
  const basePort = randomBasePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BASE_PORT: String(basePort),
    LITEFS_DIR: path.join(dir, 'litefs'),
    USERS_DB: path.join(dir, 'litefs/primary/mnt/users.db'),
    USERS_REPLICA_DBS: `${dir}/litefs/secondary1/mnt/users.db,${dir}/litefs/secondary2/mnt/users.db`,
    ENROLLMENT_DB: path.join(dir, 'enrollment.db'),
    JWKS_PUBLIC: path.join(dir, 'keys/jwks-public.json'),
    JWKS_PRIVATE: path.join(dir, 'keys/jwks-private.json'),
    GATEWAY_DIR: path.join(dir, 'gateway'),
    PBKDF2_ITERATIONS: '1000',
    ...settings,
  };
  for (const script of ['bin/mkjwks.ts', 'bin/seed-enrollment.ts']) {
    const made = spawnSync(process.execPath, [script], { cwd: ROOT, env, encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`${script} failed: ${made.stderr}`);
  }
  const keys = await testKeysFrom(env.JWKS_PRIVATE!, env.JWKS_PUBLIC!);
  const foreman: ChildProcess = spawn('foreman', ['start', '--procfile', 'Procfile', '--port', String(basePort), '--formation', FORMATION], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so that cleanup reaches every child
  });
  const log: string[] = [];
  const logFile = path.join(dir, 'formation.log');
  const logStream = createWriteStream(logFile);
  const collect = (chunk: Buffer) => {
    logStream.write(chunk);
    log.push(...chunk.toString().split('\n').filter(Boolean));
  };
  foreman.stdout!.on('data', collect);
  foreman.stderr!.on('data', collect);

  const gateway = `http://127.0.0.1:${basePort + 500}`;
  const formation: Formation = {
    basePort,
    gateway,
    instances: [0, 1, 2].map((instance) => `http://127.0.0.1:${basePort + 100 + instance}`),
    users: [0, 1].map((instance) => `http://127.0.0.1:${basePort + instance}`),
    env,
    keys,
    log,
    logFile,
    pidOf(name, command) {
      const started = log.map((line) => new RegExp(`^\\S+ ${name.replace('.', '\\.')}\\s+\\| started with pid (\\d+)`).exec(line)).findLast(Boolean);
      if (!started) throw new Error(`${name} has not started`);
      const tree = spawnSync('ps', ['-e', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' }).stdout;
      const rows = tree.split('\n').map((row) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(row)).filter((row) => row !== null);
      // Walk down from the Procfile line's process to the first process whose command matches.
      const queue = [started[1]];
      while (queue.length) {
        const pid = queue.shift()!;
        const row = rows.find((candidate) => candidate[1] === pid);
        if (row && command.test(row[3])) return Number(pid);
        queue.push(...rows.filter((candidate) => candidate[2] === pid).map((candidate) => candidate[1]));
      }
      throw new Error(`no process of ${name} runs ${command}`);
    },
    async served() {
      const rows = (await serverStats(basePort)).filter((row) => row[0] === 'enrollment');
      return Object.fromEntries(rows.map((row) => [row[1], Number(row[7])]));
    },
    async stop() {
      if (isRunning(foreman)) {
        const exited = new Promise((resolve) => foreman.once('exit', resolve));
        process.kill(-foreman.pid!, 'SIGTERM');
        if ((await Promise.race([exited, sleep(15_000, 'late')])) === 'late') process.kill(-foreman.pid!, 'SIGKILL');
      }
      spawnSync('bash', ['bin/litefs-reset.sh', '--yes'], { cwd: ROOT, env, stdio: 'inherit' });
    },
  };

  try {
    const deadline = Date.now() + 60_000;
    for (const url of [`${gateway}/health`, ...formation.users.map((user) => `${user}/health`), ...formation.instances.map((instance) => `${instance}/health`)]) {
      while ((await call(url).catch(() => ({ status: 0 }))).status !== 200) {
        if (!isRunning(foreman) || Date.now() > deadline) throw new Error(`${url} never answered:\n${log.join('\n')}`);
        await sleep(200);
      }
    }
    await untilAllUp(formation, deadline);
  } catch (error) {
    await formation.stop();
    throw error;
  }
  return formation;
}

// The gateway's stats page (CSV) as rows of its servers: proxy, server, ..., stot (7), ..., status (17).
async function serverStats(basePort: number): Promise<string[][]> {
  const csv = await (await fetch(`http://127.0.0.1:${basePort + 501}/;csv`)).text();
  return csv.split('\n').map((line) => line.split(',')).filter((row) => row.length > 17 && !['FRONTEND', 'BACKEND'].includes(row[1]) && !row[0].startsWith('#'));
}

// Until the gateway's health checks see every server UP (two passed checks each).
export async function untilAllUp(formation: Formation, deadline = Date.now() + 30_000): Promise<void> {
  for (;;) {
    const servers = (await serverStats(formation.basePort)).filter((row) => /^(enrollment|users)$/.test(row[0]));
    if (servers.length === 5 && servers.every((row) => row[17] === 'UP')) return;
    if (Date.now() > deadline) throw new Error(`not every server is UP: ${JSON.stringify(servers)}`);
    await sleep(100);
  }
}

// Requests sent back to back by `concurrency` loops until `stop` resolves: every status counted.
export async function steadyLoad(send: () => Promise<number>, concurrency: number, stop: Promise<unknown>): Promise<Record<string, number>> {
  let done = false;
  stop.then(() => (done = true));
  const statuses: Record<string, number> = {};
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!done) {
        const status = await send().catch((error: Error) => `error ${error.cause ?? error.message}`);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }),
  );
  return statuses;
}

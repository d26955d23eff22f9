// A real LiteFS cluster (one primary, two secondaries, static lease on loopback) of the test's
// own: its own directory and ports, started through bin/litefs.sh exactly as the Procfile does.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { access } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from '../lib/config.ts';
import { isRunning, makeTestKeys, randomBasePort, startService, tempDir, type RunningService } from './support.ts';
import { waitFor } from './wait.ts';

export type Node = 'primary' | 'secondary1' | 'secondary2';
const NODES: Node[] = ['primary', 'secondary1', 'secondary2'];
const PORT_OFFSET: Record<Node, number> = { primary: 200, secondary1: 300, secondary2: 400 };

export interface Cluster {
  dir: string;
  basePort: number;
  logs: string[];
  dbFile(node: Node): string;
  start(node: Node): Promise<void>;
  kill(node: Node): Promise<void>;
  stop(): Promise<void>;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

export async function startCluster(): Promise<Cluster> {
  const dir = await tempDir('litefs');
  const basePort = randomBasePort();
  const processes = new Map<Node, ChildProcess>();
  const logs: string[] = [];
  const env = { ...process.env, BASE_PORT: String(basePort), LITEFS_DIR: dir, PORT: '' };

  const cluster: Cluster = {
    dir,
    basePort,
    logs,
    dbFile: (node) => path.join(dir, node, 'mnt', 'users.db'),
    async start(node) {
      const child = spawn('bash', ['bin/litefs.sh', node], {
        cwd: ROOT,
        env: { ...env, PORT: String(basePort + PORT_OFFSET[node]) },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // its own process group: kill() reaches litefs under the wrapper
      });
      const collect = (chunk: Buffer) => logs.push(...chunk.toString().split('\n').filter(Boolean).map((line) => `${node}| ${line}`));
      child.stdout!.on('data', collect);
      child.stderr!.on('data', collect);
      processes.set(node, child);
      const mount = path.join(dir, node, 'mnt');
      // A secondary is ready once connected to the primary: LiteFS then shows `.primary`.
      const ready = node === 'primary' ? () => primaryAnswers(basePort) : () => exists(path.join(mount, '.primary'));
      await waitFor(
        `LiteFS ${node}`,
        async () => {
          if (!isRunning(child)) throw new Error(`litefs ${node} exited:\n${logs.join('\n')}`);
          return ready();
        },
        20_000,
        50,
      );
    },
    async kill(node) {
      const child = processes.get(node);
      if (!child || !isRunning(child)) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(-child.pid!, 'SIGKILL');
      await exited;
    },
    async stop() {
      // Secondaries first: one whose primary is gone may ignore SIGTERM.
      for (const node of [...NODES].reverse()) {
        const child = processes.get(node);
        if (!child || !isRunning(child)) continue;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        if ((await Promise.race([exited, sleep(5000, 'late')])) === 'late') await cluster.kill(node);
      }
      spawnSync('bash', ['bin/litefs-reset.sh', '--yes'], { cwd: ROOT, env, stdio: 'inherit' });
    },
  };

  try {
    for (const node of NODES) await cluster.start(node);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

async function primaryAnswers(basePort: number): Promise<boolean> {
  try {
    const reply = await fetch(`http://127.0.0.1:${basePort + PORT_OFFSET.primary}/info`);
    return reply.ok && ((await reply.json()) as { isPrimary?: boolean }).isPrimary === true;
  } catch {
    return false;
  }
}

// The users service on a cluster: writes to its primary, login reads from its two secondaries.
export async function startUsersOn(cluster: Cluster, iterations: number): Promise<RunningService> {
  const keys = await makeTestKeys(cluster.dir);
  return startService('users.ts', {
    USERS_DB: cluster.dbFile('primary'),
    USERS_REPLICA_DBS: `${cluster.dbFile('secondary1')},${cluster.dbFile('secondary2')}`,
    JWKS_PUBLIC: keys.publicFile,
    JWKS_PRIVATE: keys.privateFile,
    PBKDF2_ITERATIONS: String(iterations),
  });
}

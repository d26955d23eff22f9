// What the backup tests share: the settings that put a formation's files (backups included) on
// directories of the test's own that outlive it, so that it can be stopped and started again on
// them as an operator does around a restore; and the bin/ backup commands run with them.
import { spawn } from 'node:child_process';
import path from 'node:path';
import process from 'node:process';
import { ROOT } from '../lib/config.ts';

const FILES = {
  LITEFS_DIR: 'litefs', USERS_DB: 'litefs/primary/mnt/users.db', ENROLLMENT_DB: 'enrollment.db', BACKUP_DIR: 'backups',
  JWKS_PUBLIC: 'keys/jwks-public.json', JWKS_PRIVATE: 'keys/jwks-private.json', GATEWAY_DIR: 'gateway',
};

// The settings that put every file of a formation under `dir`.
export function backupSettingsIn(dir: string, more: Record<string, string> = {}): Record<string, string> {
  const replicas = ['secondary1', 'secondary2'].map((node) => path.join(dir, 'litefs', node, 'mnt/users.db'));
  return { ...Object.fromEntries(Object.entries(FILES).map(([name, file]) => [name, path.join(dir, file)])), USERS_REPLICA_DBS: replicas.join(','), ...more };
}

export interface CommandRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

// bin/NAME with the formation's settings (LITEFS_DIR, ENROLLMENT_DB, BACKUP_DIR, BASE_PORT, ...).
export function runBin(name: string, args: string[], env: NodeJS.ProcessEnv): Promise<CommandRun> {
  return new Promise((resolve) => {
    const argv = name.endsWith('.ts') ? [process.execPath, path.join('bin', name)] : ['bash', path.join('bin', name)];
    const child = spawn(argv[0], [...argv.slice(1), ...args], { cwd: ROOT, env: { ...env, PORT: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

// Where the backups of both databases live, and the settings of etc/backups.env (an environment
// variable of the same name wins). bin/backup-env.sh says the same for the bash commands.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { config, formationPorts, ROOT } from './config.ts';

function fileSettings(): Record<string, string> {
  const lines = readFileSync(path.join(ROOT, 'etc/backups.env'), 'utf8').split('\n');
  return Object.fromEntries(lines.filter((line) => /^[A-Z_]+=/.test(line)).map((line) => line.split('=', 2) as [string, string]));
}

function setting(name: string): number {
  const raw = process.env[name] || fileSettings()[name];
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

export const backupSettings = {
  enrollmentDb: config.enrollment.db,
  enrollmentReplica: path.join(config.backupDir, 'enrollment'),
  usersSnapshots: path.join(config.backupDir, 'users'),
  // Kept databases that a restore replaced.
  replaced: path.join(config.backupDir, 'replaced'),
  litestreamSocket: `${config.enrollment.db}-litestream.sock`,
  litestreamMeta: `${config.enrollment.db}-litestream`,
  // The LiteFS primary to export from: on one host its loopback port; with bin/hosts.sh, h1's address.
  primaryUrl: process.env.PRIMARY_URL || `http://127.0.0.1:${formationPorts(Number(process.env.BASE_PORT || 5000)).litefs.primary}`,
  usersInterval: () => setting('USERS_BACKUP_INTERVAL_SECONDS'),
  usersKeep: () => ({ recent: setting('USERS_BACKUP_KEEP_RECENT'), hourly: setting('USERS_BACKUP_KEEP_HOURLY'), daily: setting('USERS_BACKUP_KEEP_DAILY') }),
};

// A tool that bin/setup.sh installs: the one on PATH, else the project cache's.
export function tool(name: 'litefs' | 'litestream'): string {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  const cached = path.join(process.env.XDG_CACHE_HOME || path.join(process.env.HOME ?? '', '.cache'), 'enrollment-gateway/bin', name);
  if (!existsSync(cached)) throw new Error(`${name} is not on PATH nor at ${cached} (run npm run setup)`);
  return cached;
}

// "2026-12-03T09:58:00.000Z" in a file name (no colons).
export function stamp(time: Date): string {
  return time.toISOString().replaceAll(':', '-');
}

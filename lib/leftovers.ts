// A command killed half-way leaves its work file behind, named with its pid. The next run removes
// those whose process is gone (a live one may be another run at work).
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';

// Files in `dir` named `prefix`, the pid, and anything after it (a -wal, say).
export async function removeLeftovers(dir: string, prefix: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    const pid = name.startsWith(prefix) ? Number.parseInt(name.slice(prefix.length), 10) : NaN;
    if (!pid || pid === process.pid || alive(pid)) continue;
    await rm(path.join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

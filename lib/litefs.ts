// LiteFS may mount a moment after the users service starts. Opening the database before then
// would create it in the bare directory underneath, hidden once the mount appears, so wait.
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

export async function isFuseMount(dir: string): Promise<boolean> {
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  return mounts.split('\n').some((line) => {
    const [, mountPoint, type] = line.split(' ');
    return type?.startsWith('fuse') && mountPoint?.replace(/\\040/g, ' ') === dir;
  });
}

export async function waitForMount(dir: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; !(await isFuseMount(dir)); attempt++) {
    if (Date.now() > deadline) throw new Error(`${dir} is not a LiteFS mount after ${timeoutMs / 1000}s`);
    if (attempt % 50 === 0) process.stdout.write(`waiting for the LiteFS mount ${dir}\n`);
    await sleep(100);
  }
}

// LiteFS keeps a `.primary` file in a secondary's mount only while it is connected to the
// primary; without one, its data may be stale and it is better skipped.
export async function isConnectedSecondary(replica: { file: string }): Promise<boolean> {
  try {
    await access(path.join(path.dirname(replica.file), '.primary'));
    return true;
  } catch {
    return false;
  }
}

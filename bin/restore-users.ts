// usage: bin/node bin/restore-users.ts --yes [--while-running] [SNAPSHOT]
//
// Replaces the users database with a snapshot of BACKUP_DIR/users (its file name, or a time: the
// last one taken then or before; the newest by default; bin/list-backups.ts users lists them),
// through LiteFS and never around it: the snapshot is checked (integrity, row counts), what LiteFS
// holds now is exported into BACKUP_DIR/replaced/, then `litefs import` replaces the database on
// the primary and the secondaries follow. With the formation stopped, a LiteFS primary is started
// for the import alone (LITEFS_DIR, BASE_PORT + 200) and stopped after; start the formation next.
// Refuses while the formation runs (the LiteFS primary's or the users port answers) unless given
// --while-running.
//   --yes            needed: says that accounts changed since the snapshot may go (the replaced
//                    database is kept in BACKUP_DIR/replaced)
//   --while-running  import into the running cluster: the users instances read the restored
//                    database from their next query on
import { spawn } from 'node:child_process';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { backupSettings } from '../lib/backup-settings.ts';
import { config, ROOT } from '../lib/config.ts';
import { isFuseMount } from '../lib/litefs.ts';
import { checkDatabase, describeRows } from '../lib/sqlite-check.ts';
import { findSnapshot, importSnapshot, keepCurrent } from '../lib/users-backups.ts';
import { commandLine, listening, refuse } from './cli.ts';

const { flags, operands } = commandLine(import.meta.filename, { flags: ['yes', 'while-running'], max: 1 });
if (!flags.yes) refuse(import.meta.filename, 'this replaces the users database (every account) with a snapshot: add --yes');
const primaryPort = Number(new URL(backupSettings.primaryUrl).port);
const running = (await listening(primaryPort)) || (await listening(config.users.port));
if (running && !flags['while-running']) {
  console.error(`restore-users.ts: the formation runs (ports ${primaryPort}, ${config.users.port}): stop it first, or add --while-running to import into the running LiteFS cluster`);
  process.exit(1);
}

try {
  const snapshot = await findSnapshot(operands[0]);
  const checked = await checkDatabase(snapshot.file);
  console.log(`restoring ${snapshot.file}: integrity ok; ${describeRows(checked)}`);
  const stopPrimary = running ? async () => {} : await startPrimary();
  try {
    const kept = await keepCurrent();
    console.log(kept ? `the database it replaces is kept in ${kept}` : 'LiteFS held no users database');
    await importSnapshot(snapshot.file);
  } finally {
    await stopPrimary();
  }
  console.log(`imported through the LiteFS primary ${backupSettings.primaryUrl}: the users database is the snapshot ${snapshot.time ? `of ${snapshot.time.toISOString()}` : snapshot.file}`);
} catch (error) {
  console.error(`restore-users.ts: ${(error as Error).message}`);
  process.exit(1);
}

// A LiteFS primary of the formation's own (bin/litefs.sh primary) until the returned stop().
async function startPrimary(): Promise<() => Promise<void>> {
  // A formation just stopped may still be letting go of its mount.
  const mount = path.join(process.env.LITEFS_DIR || path.join(ROOT, 'var/litefs'), 'primary/mnt');
  for (const deadline = Date.now() + 15_000; (await isFuseMount(mount)) && Date.now() < deadline; ) await sleep(200);
  console.log(`starting a LiteFS primary for the import (${backupSettings.primaryUrl})`);
  const primary = spawn('bash', ['bin/litefs.sh', 'primary'], { cwd: ROOT, env: { ...process.env, PORT: String(primaryPort) }, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((resolve) => primary.once('exit', resolve));
  const stop = async () => {
    primary.kill('SIGTERM');
    await exited;
  };
  for (const deadline = Date.now() + 30_000; ; await sleep(200)) {
    const info = await fetch(`${backupSettings.primaryUrl}/info`).then((answer) => answer.json() as Promise<{ isPrimary?: boolean }>, () => undefined);
    if (info?.isPrimary) return stop;
    if (primary.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error('the LiteFS primary started for the import did not become primary within 30 s');
    }
  }
}

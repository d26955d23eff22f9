// Every command in bin/ answers -h and --help with its usage (stdout, exit 0) and refuses an unknown
// option with its usage (stderr, exit 2), having done nothing: nothing changes under var/ nor in the
// temporary directory that its settings (LITEFS_DIR, USERS_DB, ENROLLMENT_DB, JWKS_*, GATEWAY_DIR,
// XDG_CACHE_HOME, the working directory) point at. The commands that destroy data refuse without
// --yes, and while the formation runs.
//
// The commands are found in bin/, so that a new one is covered: a file with a #! line (run by its
// interpreter), and a .ts file (run with node) unless it is a module, that is it exports something
// and has no `import.meta.main` (bin/cli.ts, bin/loadtest-svg.ts). Left out: bin/cli.sh (no #! line:
// sourced, never run) and bin/node, which is node itself (its options are node's).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import process from 'node:process';
import { ROOT } from '../lib/config.ts';
import { randomBasePort, tempDir } from '../harness/support.ts';

const BIN = path.join(ROOT, 'bin');
const PASSTHROUGH = new Set(['node']);

// The argv that runs bin/NAME, or undefined if NAME is not a command.
function commandOf(name: string): string[] | undefined {
  const file = path.join(BIN, name);
  if (PASSTHROUGH.has(name) || !lstatSync(file).isFile()) return undefined;
  const text = readFileSync(file, 'utf8');
  if (name.endsWith('.ts')) return /^export /m.test(text) && !text.includes('import.meta.main') ? undefined : [process.execPath, file];
  if (!text.startsWith('#!')) return undefined;
  return [...text.slice(2, text.indexOf('\n')).trim().split(/\s+/), file];
}
const COMMANDS = new Map(
  readdirSync(BIN)
    .sort()
    .flatMap((name) => {
      const argv = commandOf(name);
      return argv ? [[name, argv] as const] : [];
    }),
);

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

// Runs one command in `cwd` with `env`; killed (with its process group) after 30 s.
function run(argv: string[], args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], [...argv.slice(1), ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      stderr += '\n(killed after 30 s)';
      process.kill(-child.pid!, 'SIGKILL');
    }, 30_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

// At most `limit` at a time: the machine has two cores, shared.
async function inParallel<T>(jobs: (() => Promise<T>)[], limit = 4): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const index = next++;
      results[index] = await jobs[index]();
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}

// Every path under `dir` with, for files, size and modification time. Other filesystems (the FUSE
// mounts of a running formation under var/litefs) are neither entered nor even looked at.
function listing(dir: string): Map<string, string> {
  const mounts = new Set(readFileSync('/proc/self/mounts', 'utf8').split('\n').map((line) => line.split(' ')[1]));
  const entries = new Map<string, string>();
  const walk = (at: string) => {
    for (const name of readdirSync(at)) {
      const file = path.join(at, name);
      if (mounts.has(file)) continue;
      const stat = lstatSync(file);
      entries.set(path.relative(dir, file), stat.isDirectory() ? 'dir' : `${stat.size} bytes, mtime ${stat.mtimeMs}`);
      if (stat.isDirectory()) walk(file);
    }
  };
  if (existsSync(dir)) walk(dir);
  return entries;
}

function changes(before: Map<string, string>, after: Map<string, string>, ignore: (file: string) => boolean = () => false): string[] {
  const found: string[] = [];
  for (const [file, was] of before) if (!ignore(file) && after.get(file) !== was) found.push(`${file}: ${was} -> ${after.get(file) ?? 'gone'}`);
  for (const [file, now] of after) if (!ignore(file) && !before.has(file)) found.push(`${file}: new (${now})`);
  return found;
}

// What a formation running on var/ (npm start) changes by itself: LiteFS prunes its transaction
// files on a timer, and Litestream and the users backups write on theirs; and if the formation
// served requests meanwhile (its log grew), its log and databases.
function formationWrites(before: Map<string, string>, after: Map<string, string>): (file: string) => boolean {
  const served = before.get('formation.log') !== after.get('formation.log');
  return (file) =>
    /^litefs\/[^/]+\/data\/dbs\/[^/]+\/ltx\//.test(file) ||
    file.startsWith('backups/') ||
    file.startsWith('enrollment.db-litestream') ||
    (served && (file === 'formation.log' || file.startsWith('enrollment.db') || /^litefs\/[^/]+\/data\//.test(file)));
}

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

// Every setting that names a file or directory, pointed into `dir`; an install would land in its
// XDG_CACHE_HOME, and be seen.
const FILES = {
  LITEFS_DIR: 'litefs',
  USERS_DB: 'litefs/primary/mnt/users.db',
  ENROLLMENT_DB: 'enrollment.db',
  JWKS_PUBLIC: 'keys/jwks-public.json',
  JWKS_PRIVATE: 'keys/jwks-private.json',
  GATEWAY_DIR: 'gateway',
  XDG_CACHE_HOME: 'cache',
};

function settings(dir: string, basePort: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...Object.fromEntries(Object.entries(FILES).map(([name, file]) => [name, path.join(dir, file)])),
    USERS_REPLICA_DBS: ['secondary1', 'secondary2'].map((node) => path.join(dir, `litefs/${node}/mnt/users.db`)).join(','),
    BASE_PORT: String(basePort),
    PORT: '',
    GATEWAY_URL: `http://127.0.0.1:${basePort + 500}`,
  };
}

describe('bin/ commands: --help, a bogus option, and the destructive ones', function () {
  this.timeout(120_000);
  const ARGS = ['--help', '-h', '--no-such-option'];
  const results = new Map<string, Run>(); // "name arg" -> what it did
  let dir: string;
  let varBefore: Map<string, string>;
  let varAfter: Map<string, string>;
  let tmpAfter: Map<string, string>;

  before(async function () {
    dir = await tempDir('bin-commands');
    const env = settings(dir, randomBasePort());
    varBefore = listing(path.join(ROOT, 'var'));
    const jobs = [...COMMANDS].flatMap(([name, argv]) =>
      ARGS.map((arg) => async () => results.set(`${name} ${arg}`, await run(argv, [arg], env, dir))),
    );
    await inParallel(jobs);
    varAfter = listing(path.join(ROOT, 'var'));
    tmpAfter = listing(dir);
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('finds the commands in bin/ (every one the README names, none of the modules)', () => {
    for (const name of ['bench-login.ts', 'forge-token.ts', 'gateway-env.ts', 'gateway.sh', 'hosts.sh', 'kill-under-load.sh', 'litefs-reset.sh', 'litefs.sh', 'loadtest.sh',
      'migrate-users-journal.sh', 'migrate-users-journal.ts', 'mkjwks', 'mkjwks.ts', 'replication-lag.ts', 'seed-enrollment.ts', 'seed-users.ts', 'setup.sh',
      'smoke.sh', 'start.sh', 'supervise.sh', 'test.sh', 'backup-now.ts', 'backup-users-every.sh', 'bench-backup.ts', 'list-backups.ts', 'litestream.sh',
      'restore-enrollment.ts', 'restore-users.ts', 'verify-backup.ts']) {
      assert.ok(COMMANDS.has(name), `bin/${name} is not found as a command`);
    }
    for (const name of ['cli.sh', 'cli.ts', 'loadtest-svg.ts', 'node']) assert.ok(!COMMANDS.has(name), `bin/${name} is taken for a command`);
  });

  for (const name of COMMANDS.keys()) {
    it(`bin/${name}: -h and --help print the usage on stdout and exit 0; --no-such-option: usage on stderr, exit 2`, () => {
      const problems: string[] = [];
      for (const arg of ARGS) {
        const { status, stdout, stderr } = results.get(`${name} ${arg}`)!;
        const help = arg !== '--no-such-option';
        const wrong = [
          status !== (help ? 0 : 2) && `exit ${status}, not ${help ? 0 : 2}`,
          !/^usage:/im.test(help ? stdout : stderr) && `no usage on ${help ? 'stdout' : 'stderr'}`,
          !help && stdout && 'printed on stdout',
        ].filter(Boolean);
        if (wrong.length) problems.push(`${arg}: ${wrong.join(', ')} (stderr: ${stderr.trim().split('\n').slice(0, 2).join(' | ')})`);
      }
      assert.deepEqual(problems, []);
    });
  }

  it('nothing changed under var/, nor in the temporary directory the settings point at', () => {
    assert.deepEqual(changes(varBefore, varAfter, formationWrites(varBefore, varAfter)), [], 'var/ changed');
    assert.deepEqual([...tmpAfter.keys()], [], 'something was written where the settings point');
  });

  describe('the destructive commands', () => {
    // A LiteFS directory and an enrollment database that must survive every refusal.
    let data: string;
    let env: NodeJS.ProcessEnv;
    let servers: Server[] = [];
    const marker = () => path.join(data, 'litefs/primary/data/marker');

    before(async () => {
      data = await tempDir('bin-destructive');
      const basePort = randomBasePort();
      env = settings(data, basePort);
      mkdirSync(path.dirname(marker()), { recursive: true });
      writeFileSync(marker(), 'accounts');
      writeFileSync(env.ENROLLMENT_DB!, '');
      // "The formation runs": a listener on the users port and on the first enrollment port.
      servers = await Promise.all([listen(basePort), listen(basePort + 100)]);
    });

    after(async () => {
      for (const server of servers) server.close();
      if (data) await rm(data, { recursive: true, force: true });
    });

    it('refuse without --yes (exit 2), and while the formation runs (exit 1), destroying nothing', async () => {
      const cases: [string, string[], number, RegExp][] = [
        ['litefs-reset.sh', [], 2, /--yes/],
        ['migrate-users-journal.sh', [], 2, /--yes/],
        ['seed-enrollment.ts', ['--reset'], 2, /--yes/],
        ['litefs-reset.sh', ['--yes'], 1, /the formation runs .*users port/],
        ['migrate-users-journal.sh', ['--yes'], 1, /the formation runs .*users port/],
        ['seed-enrollment.ts', ['--reset', '--yes'], 1, /enrollment instances run/],
        ['supervise.sh', [], 2, /^usage:/m], // with no command it used to restart nothing, for ever
        ['supervise.sh', ['name'], 2, /^usage:/m],
      ];
      const before = listing(data);
      const runs = await inParallel(cases.map(([name, args]) => () => run(COMMANDS.get(name)!, args, env, data)));
      for (const [index, [name, args, status, message]] of cases.entries()) {
        assert.equal(runs[index].status, status, `bin/${name} ${args.join(' ')}: exit ${runs[index].status}\n${runs[index].stderr}`);
        assert.match(runs[index].stderr, message, `bin/${name} ${args.join(' ')}`);
      }
      assert.deepEqual(changes(before, listing(data)), []);
    });

    it('bin/litefs-reset.sh --yes wipes LITEFS_DIR when nothing runs there', async () => {
      const other = { ...env, BASE_PORT: String(Number(env.BASE_PORT) + 50) }; // no listener there
      const { status, stderr } = await run(COMMANDS.get('litefs-reset.sh')!, ['--yes'], other, data);
      assert.equal(status, 0, stderr);
      assert.ok(!existsSync(path.join(data, 'litefs')), 'LITEFS_DIR is still there');
    });
  });
});

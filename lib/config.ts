// Every setting of both services, read once from the environment. The defaults are the
// development formation that `npm start` runs; the README lists each variable.
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

export const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

const env = process.env;

// libuv's thread pool runs every SQLite query and PBKDF2 hash. Node sizes it when it is first used,
// after all modules have loaded, so setting it here works. See lib/password.ts for how it is shared.
env.UV_THREADPOOL_SIZE ||= '6';

function text(name: string, fallback: string): string {
  const value = env[name];
  return value === undefined || value === '' ? fallback : value;
}

function integer(name: string, fallback: number): number {
  const raw = text(name, String(fallback));
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  }
  return value;
}

// One of the values allowed; the first is the default.
function choice<T extends string>(name: string, allowed: readonly T[]): T {
  const value = text(name, allowed[0]);
  if (!allowed.includes(value as T)) throw new Error(`${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value as T;
}

function file(name: string, fallback: string): string {
  return path.resolve(ROOT, text(name, fallback));
}

// Foreman gives Procfile line i the port BASE_PORT + 100 * i (+ instance - 1). The Procfile's order
// is users (2), enrollment (3), primary, secondary1, secondary2 (LiteFS's HTTP ports), gateway (and
// its stats page on the next port).
export function formationPorts(base: number) {
  return {
    users: [base, base + 1],
    enrollment: [base + 100, base + 101, base + 102],
    litefs: { primary: base + 200, secondary1: base + 300, secondary2: base + 400 },
    gateway: base + 500,
    stats: base + 501,
  };
}

const basePort = integer('BASE_PORT', 5000);
const ports = formationPorts(basePort);
const publicKeys = file('JWKS_PUBLIC', 'var/keys/jwks-public.json');

export const config = Object.freeze({
  users: {
    port: integer('PORT', ports.users[0]),
    // Writes go to the LiteFS primary; login reads rotate over the secondaries.
    primaryDb: file('USERS_DB', 'var/litefs/primary/mnt/users.db'),
    // "none" on the primary's host of bin/hosts.sh: its logins read the primary.
    replicaDbs: text('USERS_REPLICA_DBS', 'var/litefs/secondary1/mnt/users.db,var/litefs/secondary2/mnt/users.db')
      .split(',')
      .filter((entry) => entry.trim() !== 'none')
      .map((entry) => path.resolve(ROOT, entry.trim())),
    // Off for a plain SQLite file (tests, `deno run`): then nobody waits for a FUSE mount.
    litefs: text('USERS_LITEFS', 'on') !== 'off',
    // "elsewhere" on a host that holds only a replica (bin/hosts.sh): the gateway sends writes to the
    // primary's host, and this instance answers logins from its own host's replica alone.
    primaryElsewhere: choice('USERS_PRIMARY', ['here', 'elsewhere']) === 'elsewhere',
    pbkdf2Iterations: integer('PBKDF2_ITERATIONS', 600_000),
    accessTokenSeconds: integer('ACCESS_TOKEN_SECONDS', 15 * 60),
    refreshTokenSeconds: integer('REFRESH_TOKEN_SECONDS', 24 * 60 * 60),
    // Failed logins per account (lib/lockout.ts): 5 free, then waits of 1, 2, 4 ... 300 s.
    lockout: {
      freeFailures: integer('LOGIN_FREE_FAILURES', 5),
      firstWaitSeconds: integer('LOGIN_FIRST_WAIT_SECONDS', 1),
      maxWaitSeconds: integer('LOGIN_MAX_WAIT_SECONDS', 300),
      forgetAfterSeconds: integer('LOGIN_FORGET_AFTER_SECONDS', 15 * 60),
    },
  },
  enrollment: {
    port: integer('PORT', ports.enrollment[0]),
    db: file('ENROLLMENT_DB', 'var/enrollment.db'),
    // "off": a plain file in WAL mode (one host). On LiteFS (bin/hosts.sh) the primary's host writes
    // it and every other host reads its own replica.
    litefs: choice('ENROLLMENT_LITEFS', ['off', 'primary', 'replica']),
  },
  // Backups of both databases: BACKUP_DIR/enrollment (Litestream) and BACKUP_DIR/users (litefs
  // export). Beside the enrollment database by default, so a test's formation keeps its own.
  backupDir: file('BACKUP_DIR', path.join(path.dirname(file('ENROLLMENT_DB', 'var/enrollment.db')), 'backups')),
  jwt: {
    issuer: text('JWT_ISSUER', 'enrollment-gateway/users'),
    audience: text('JWT_AUDIENCE', 'enrollment-gateway'),
    refreshAudience: text('JWT_REFRESH_AUDIENCE', 'enrollment-gateway/refresh'),
    // How far ahead of this host's clock a token's nbf or iat may be.
    clockSkewSeconds: integer('JWT_CLOCK_SKEW_SECONDS', 30),
    publicKeys,
    privateKeys: file('JWKS_PRIVATE', 'var/keys/jwks-private.json'),
    // The per-kid PEM files, map and preload lines that bin/mkjwks derives for HAProxy.
    gatewayKeys: path.join(path.dirname(publicKeys), 'gateway'),
  },
  // HAProxy's settings, which bin/gateway.sh hands to etc/haproxy.cfg (see bin/gateway-env.ts).
  gateway: {
    port: integer('PORT', ports.gateway),
    statsPort: integer('PORT', ports.gateway) + 1,
    // Failed logins (401) per client address per minute before the gateway answers 429.
    loginFailuresPerMinute: integer('GATEWAY_LOGIN_FAILURES_PER_MINUTE', 10),
    users: ports.users.map((port) => `127.0.0.1:${port}`),
    enrollment: ports.enrollment.map((port) => `127.0.0.1:${port}`),
    // With bin/hosts.sh: the hosts' network namespaces, the primary's host first. The gateway then
    // reaches one users and one enrollment instance on each host, at the same ports inside it.
    hosts: text('GATEWAY_HOSTS', '').split(',').filter(Boolean),
    // Its sockets: the master CLI (bin/mkjwks --rotate reloads through it) and the stats socket.
    dir: file('GATEWAY_DIR', 'var/gateway'),
  },
  // On a replica-only host of bin/hosts.sh: the other such hosts' users instances, which both
  // services ask whether their replica has lost the primary too (lib/replica-quorum.ts).
  replicaPeers: text('REPLICA_PEERS', '').split(',').filter(Boolean),
  http: {
    // Loopback only; bin/hosts.sh also opens each host's own address (inside its namespace, on the
    // hosts' private bridge), where the other hosts' instances ask GET /replica.
    address: text('LISTEN_ADDR', '127.0.0.1'),
    bodyLimit: '16kb',
  },
  threadPoolSize: Number(env.UV_THREADPOOL_SIZE),
});

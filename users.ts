// The users service: registers users and checks passwords. A successful login answers with JWTs
// that it signs itself (RS256, kid): it is the only holder of the private key. Writes go to the
// LiteFS primary (lib/primary.ts); login reads rotate over the two secondaries (lib/rotation.ts),
// falling back to the primary. A login writes nothing, so logins go on while the primary is away;
// registration, refresh, logout and password changes then answer 503 with Retry-After.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import Router from '@koa/router';
import type { JWTPayload } from 'jose';
import { repeatUntilClosed } from './lib/background.ts';
import { config } from './lib/config.ts';
import { isUniqueViolation, type Transaction } from './lib/db.ts';
import { addDocsRoutes } from './lib/docs.ts';
import { serve, serviceApp, toStdout, type LogState, type LogWriter, type ServiceApp } from './lib/http.ts';
import { conflict, forbidden, notFound, Problem, tooManyRequests, unauthorized, unprocessable } from './lib/problem.ts';
import { isConnectedSecondary } from './lib/litefs.ts';
import { afterFailure, Lockout, waitSeconds, type FailureRecord } from './lib/lockout.ts';
import { idempotency } from './lib/idempotency.ts';
import { PASSWORD } from './lib/limits.ts';
import { hashIterations, hashPassword, verifyPassword } from './lib/password.ts';
import { Primary, PrimaryAway } from './lib/primary.ts';
import { openUsersPrimary } from './lib/users-db.ts';
import { refuseIfStale, replicaConnected, replicaMayAnswer } from './lib/replica-quorum.ts';
import { ReadRotation } from './lib/rotation.ts';
import { authenticate, loadPublicKeys, ROLES, tokenSigner, type Caller, type PublicKeys, type Role } from './lib/tokens.ts';
import { fields, oneOrMoreOf, string, validUsername } from './lib/validate.ts';
import { usersDocument } from './users.openapi.ts';

interface UserRow {
  id: number;
  username: string;
  password_hash: string;
  password_version: number;
  roles: string;
}

interface User {
  id: number;
  username: string;
  passwordHash: string;
  passwordVersion: number;
  roles: Role[];
}

const FIND_USER = `
  SELECT users.id, users.username, users.password_hash, users.password_version, group_concat(user_roles.role) AS roles
  FROM users JOIN user_roles ON user_roles.user_id = users.id
  WHERE users.username = ?
  GROUP BY users.id`;

async function findUser(db: Transaction, username: string): Promise<User | undefined> {
  const row = await db.get<UserRow>(FIND_USER, [username]);
  return row && { id: row.id, username: row.username, passwordHash: row.password_hash, passwordVersion: row.password_version, roles: row.roles.split(',').sort() as Role[] };
}

// Work on the primary that may do without it: undefined while it is away.
async function whilePrimaryAway<T>(work: () => Promise<T>): Promise<T | undefined> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof PrimaryAway) return undefined;
    throw error;
  }
}

function password(value: unknown, name = 'password'): string {
  const text = string(value, name, { min: PASSWORD.minCharacters, max: PASSWORD.maxBytes });
  if (Buffer.byteLength(text) > PASSWORD.maxBytes) throw unprocessable(`${name} must be at most ${PASSWORD.maxBytes} bytes`);
  return text;
}

// What /refresh and /logout need of a refresh token. One issued before tokens carried their family
// has none: it is refused (its holder logs in again).
function refreshClaims(caller: Caller): { jti: string; family: string; passwordVersion: number; exp: number } {
  const { jti, fam, pwv, exp } = caller.claims;
  if (typeof jti !== 'string' || typeof fam !== 'string' || typeof pwv !== 'number' || typeof exp !== 'number') {
    throw unauthorized('this refresh token is from an older version of the service: log in again');
  }
  return { jti, family: fam, passwordVersion: pwv, exp };
}

const FIND_FAILURES = 'SELECT failures, locked_until AS lockedUntil, last_failure AS lastFailure FROM login_failures WHERE username = ?';
const REVOKE_FAMILY = 'INSERT OR IGNORE INTO revoked_families (family, expires_at) VALUES (?, ?)';

export interface UsersDeps {
  primary: Primary; // every write, and what must be current
  replicas: ReadRotation; // login reads
  // On a host without the primary (bin/hosts.sh): whether this host's replica is connected to it,
  // and whether it may answer logins (lib/replica-quorum.ts).
  replica?: { connected: () => Promise<boolean>; mayAnswer: () => Promise<boolean> };
  publicKeys: PublicKeys;
  sign: (claims: JWTPayload) => Promise<string>;
  settings: Pick<typeof config.users, 'pbkdf2Iterations' | 'accessTokenSeconds' | 'refreshTokenSeconds' | 'lockout'>;
  jwt: Pick<typeof config.jwt, 'issuer' | 'audience' | 'refreshAudience'>;
  log?: LogWriter;
}

// The databases and keys that the settings name. The primary is connected now if it can be, else
// tried again in the background (logins need only a replica).
export async function openUsersDeps(settings: typeof config.users, jwt: typeof config.jwt, log: LogWriter = toStdout): Promise<UsersDeps> {
  const { primaryDb: file, litefs, primaryElsewhere } = settings;
  const elsewhere = primaryElsewhere ? "this host holds a replica of the users database and the primary's host is away: nothing was changed; try again shortly" : undefined;
  const primary = new Primary({ file, open: ({ create }) => openUsersPrimary({ create, file, litefs }), log, elsewhere });
  await primary.connect();
  const replicas = new ReadRotation(
    // Named after the LiteFS node on another host (…/secondary2/mnt/users.db), so its log lines tell.
    settings.replicaDbs.map((file, index) => ({ name: elsewhere ? path.basename(path.dirname(path.dirname(file))) : `secondary${index + 1}`, file })),
    { name: 'primary', db: primary },
    {
      // A secondary that has lost its primary may be behind it; while this service cannot reach the
      // primary either, the secondaries are all there is (and nothing can be written meanwhile).
      // (On a host without the primary, every read checks its replica instead: replicaConnected.)
      ready: litefs && !elsewhere ? async (replica) => (await isConnectedSecondary(replica)) || !primary.available : undefined,
      // With no other replica to turn to, a read waits longer for LiteFS applying a transaction.
      busyTimeoutMs: elsewhere ? 1000 : undefined,
      onFailure: (name, error) => console.error(`replica ${name} skipped: ${(error as Error).message}`),
    },
  );
  const publicKeys = await loadPublicKeys(jwt.publicKeys);
  const connected = elsewhere ? replicaConnected(settings.replicaDbs[0]) : undefined;
  const replica = connected && { connected, mayAnswer: replicaMayAnswer(connected, config.replicaPeers) };
  return { primary, replicas, replica, publicKeys, sign: await tokenSigner(jwt.privateKeys), settings, jwt, log };
}

// The app owns the databases it is given: close() closes them.
export async function createUsersApp({ primary, replicas, replica, publicKeys, sign, settings, jwt, log }: UsersDeps): Promise<ServiceApp> {
  const accessTokens = { keys: publicKeys.getKey, issuer: jwt.issuer, audience: jwt.audience };
  const refreshTokens = { keys: publicKeys.getKey, issuer: jwt.issuer, audience: jwt.refreshAudience };
  // Unknown users are checked against this, so they cost as much time as a wrong password.
  const dummyHash = await hashPassword(randomUUID(), settings.pbkdf2Iterations);
  const closed = new AbortController();

  // Replication is asynchronous: a user registered a moment ago may not be on the secondary yet,
  // so a miss there is asked again of the primary before it counts as "no such user" (while the
  // primary is away nobody can register, so the secondary's answer stands).
  async function readUser(username: string): Promise<{ user?: User; served: string }> {
    const { value: user, served } = await replicas.read((db) => findUser(db, username));
    if (user || served === 'primary') return { user, served };
    const fromPrimary = await whilePrimaryAway(() => findUser(primary, username));
    return { user: fromPrimary, served: `${served}-miss,primary${primary.available ? '' : '-away'}` };
  }

  // The hash a login was checked against came from a replica, which may be a moment behind: if the
  // primary holds another one, the password has just been changed and the old one must not work.
  // While the primary is away nothing can change it, so the replica's hash stands; the window is a
  // change acknowledged by a primary that died before a secondary had it (README, "Failures").
  async function stillCurrent(user: User): Promise<boolean> {
    const row = await whilePrimaryAway(() => primary.get<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = ?', [user.id]));
    return !row ? !primary.available : row.password_hash === user.passwordHash;
  }

  // Claims shaped like the course's mkclaims.py. The refresh token has its own audience and no
  // roles, so no endpoint that wants an access token can be passed one; it carries its login's
  // family (fam) and the password_version it was issued under (pwv), checked when it is used.
  function claimsFor(user: User, family: string) {
    const now = Math.floor(Date.now() / 1000);
    const access = {
      aud: jwt.audience,
      iss: jwt.issuer,
      sub: user.username,
      jti: randomUUID(),
      roles: user.roles,
      iat: now,
      exp: now + settings.accessTokenSeconds,
    };
    const refresh = {
      aud: jwt.refreshAudience,
      iss: jwt.issuer,
      sub: user.username,
      jti: randomUUID(),
      fam: family,
      pwv: user.passwordVersion,
      iat: now,
      exp: now + settings.refreshTokenSeconds,
    };
    return { access, refresh };
  }

  async function signed({ access, refresh }: ReturnType<typeof claimsFor>) {
    return { access_token: await sign(access), refresh_token: await sign(refresh), exp: access.exp };
  }

  // A hash made with fewer iterations than configured (an older setting, or one a Django or Python
  // tool wrote) is made again at the current count after a successful login. The answer does not
  // wait for it; the update applies only if the hash has not changed meanwhile.
  const rehashing = new Set<string>();
  function rehashIfWeak(user: User, secret: string): void {
    if (hashIterations(user.passwordHash) >= settings.pbkdf2Iterations || rehashing.has(user.username)) return;
    rehashing.add(user.username);
    hashPassword(secret, settings.pbkdf2Iterations)
      .then((hash) => primary.run('UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?', [hash, user.id, user.passwordHash]))
      .then(({ changes }) => changes && console.log(`rehashed the password of ${user.username} at ${settings.pbkdf2Iterations} iterations`))
      .catch((error: Error) => console.error(`rehashing the password of ${user.username} failed: ${error.message}`))
      .finally(() => rehashing.delete(user.username));
  }

  // Failed logins per account: the record on the primary, which every instance shares, and this
  // instance's own count in memory, which holds while the primary is away.
  const lockout = new Lockout(settings.lockout);

  // Returns whether the account has a record of failures, which a success then clears.
  async function refuseIfLockedOut(username: string): Promise<boolean> {
    const record = await failureRecord(username);
    const wait = Math.max(lockout.waitSeconds(username), waitSeconds(record, settings.lockout));
    if (wait) throw tooManyRequests(`too many failed logins for "${username}": try again in ${wait} s`, wait);
    return record !== undefined;
  }

  // The primary's record; while it is away (or on another host), a replica's copy of it.
  async function failureRecord(username: string): Promise<FailureRecord | undefined> {
    try {
      if (primary.available) return await primary.get<FailureRecord>(FIND_FAILURES, [username]);
    } catch (error) {
      if (!(error instanceof PrimaryAway)) throw error;
    }
    return whilePrimaryAway(async () => (await replicas.read((db) => db.get<FailureRecord>(FIND_FAILURES, [username]))).value);
  }

  async function loginFailed(username: string): Promise<void> {
    lockout.failed(username);
    await whilePrimaryAway(
      () =>
        primary.transaction(async (tx) => {
          const record = afterFailure(await tx.get<FailureRecord>(FIND_FAILURES, [username]), settings.lockout);
          await tx.run(
            `INSERT INTO login_failures (username, failures, locked_until, last_failure) VALUES (?, ?, ?, ?)
             ON CONFLICT (username) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until, last_failure = excluded.last_failure`,
            [username, record.failures, record.lockedUntil, record.lastFailure],
          );
        }),
    );
  }

  async function loginSucceeded(username: string, hadFailures: boolean): Promise<void> {
    lockout.succeeded(username);
    if (hadFailures) await whilePrimaryAway(() => primary.run('DELETE FROM login_failures WHERE username = ?', [username]));
  }

  // A family revoked now outlives every refresh token of it: none was issued more than
  // REFRESH_TOKEN_SECONDS before the next one, and the next is issued only while it is not revoked.
  const revokedUntil = () => Math.floor(Date.now() / 1000) + settings.refreshTokenSeconds;

  const router = new Router<LogState>();

  router.post('/users', async (ctx) => {
    const body = fields(ctx.request.body, ['username', 'password', 'roles']);
    const username = validUsername(body.username);
    const secret = password(body.password);
    const roles = oneOrMoreOf(body.roles, 'roles', ROLES);
    if (roles.some((role) => role !== 'Student')) {
      await authenticate(ctx, accessTokens, 'Registrar');
    }
    if (await primary.get('SELECT 1 FROM users WHERE username = ?', [username])) {
      throw conflict(`the username "${username}" is taken`);
    }
    const passwordHash = await hashPassword(secret, settings.pbkdf2Iterations);
    try {
      await primary.transaction(async (tx) => {
        const { lastID } = await tx.run('INSERT INTO users (username, password_hash) VALUES (?, ?)', [username, passwordHash]);
        for (const role of roles) {
          await tx.run('INSERT INTO user_roles (user_id, role) VALUES (?, ?)', [lastID, role]);
        }
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`the username "${username}" is taken`);
      throw error;
    }
    ctx.status = 201;
    ctx.set('Location', `/users/${username}`);
    ctx.body = { username, roles: [...roles].sort() };
  });

  // A login reads a replica and writes nothing (its failures apart), so it works while the primary
  // is away; the tokens it signs are recorded only when the refresh token is first used.
  router.post('/login', async (ctx) => {
    const body = fields(ctx.request.body, ['username', 'password']);
    const username = string(body.username, 'username', { max: 64 }).toLowerCase();
    const secret = password(body.password);
    await refuseIfStale(replica?.mayAnswer);
    const hadFailures = await refuseIfLockedOut(username);
    const { user, served } = await readUser(username);
    ctx.state.log = { replica: served };
    const matches = await verifyPassword(secret, user?.passwordHash ?? dummyHash);
    if (!user || !matches || !(await stillCurrent(user))) {
      await loginFailed(username);
      throw unauthorized('wrong username or password');
    }
    await loginSucceeded(username, hadFailures);
    ctx.state.user = user.username;
    rehashIfWeak(user, secret);
    ctx.body = await signed(claimsFor(user, randomUUID()));
  });

  // A refresh token works once: it is recorded as used on the primary, in the transaction that
  // checks it (a replica may not know yet that it was used).
  router.post('/refresh', async (ctx) => {
    fields(ctx.request.body ?? {}, []);
    const caller = await authenticate(ctx, refreshTokens);
    const token = refreshClaims(caller);
    const outcome = await primary.transaction(async (tx) => {
      if (await tx.get('SELECT 1 FROM revoked_families WHERE family = ?', [token.family])) return { refused: 'this refresh token has been revoked: log in again' };
      const { changes } = await tx.run('INSERT OR IGNORE INTO used_refresh_tokens (jti, family, expires_at) VALUES (?, ?, ?)', [token.jti, token.family, token.exp]);
      if (!changes) {
        // Used twice: one of the two holders stole it. Neither may go on (the revocation commits).
        await tx.run(REVOKE_FAMILY, [token.family, revokedUntil()]);
        return { refused: 'this refresh token was used before, so every token of this login is revoked: log in again' };
      }
      const user = await findUser(tx, caller.username); // read from the primary: current
      if (!user) return { refused: 'the account no longer exists' };
      if (user.passwordVersion !== token.passwordVersion) return { refused: 'the password has been changed since this login: log in again' };
      return { claims: claimsFor(user, token.family) };
    });
    if (!outcome.claims) throw unauthorized(outcome.refused ?? 'the account no longer exists');
    ctx.body = await signed(outcome.claims);
  });

  // Ends the login the refresh token belongs to: none of its refresh tokens works any more. Access
  // tokens already issued live out their short lifetime (ACCESS_TOKEN_SECONDS).
  router.post('/logout', async (ctx) => {
    fields(ctx.request.body ?? {}, []);
    const caller = await authenticate(ctx, refreshTokens);
    await primary.run(REVOKE_FAMILY, [refreshClaims(caller).family, revokedUntil()]);
    ctx.status = 204;
  });

  // The user (who must also give the current password: a stolen access token is not enough) or a
  // Registrar sets a new password. A new password_version refuses every refresh token of that user.
  router.put('/users/:username/password', async (ctx) => {
    const caller = await authenticate(ctx, accessTokens);
    const username = ctx.params.username.toLowerCase();
    const self = caller.username === username;
    if (!self && !caller.roles.includes('Registrar')) throw forbidden('only the user themselves or a Registrar may change a password');
    const body = fields(ctx.request.body, ['new_password'], self ? ['current_password'] : []);
    const newSecret = password(body.new_password, 'new_password');
    if (self && body.current_password === undefined) throw unprocessable('missing field(s): current_password');
    const user = await findUser(primary, username);
    if (!user) throw notFound(`no user "${username}"`);
    if (self) {
      await refuseIfLockedOut(username);
      if (!(await verifyPassword(password(body.current_password, 'current_password'), user.passwordHash))) {
        await loginFailed(username);
        throw forbidden('current_password is not the password of this account');
      }
    }
    const passwordHash = await hashPassword(newSecret, settings.pbkdf2Iterations);
    await primary.transaction((tx) => tx.run('UPDATE users SET password_hash = ?, password_version = password_version + 1 WHERE id = ?', [passwordHash, user.id]));
    ctx.state.log = { account: username };
    ctx.status = 204;
  });

  router.get('/users/:username', async (ctx) => {
    const caller = await authenticate(ctx, accessTokens);
    const username = ctx.params.username.toLowerCase();
    if (caller.username !== username && !caller.roles.includes('Registrar')) {
      throw forbidden('only the user themselves or a Registrar may see an account');
    }
    await refuseIfStale(replica?.mayAnswer);
    const { user, served } = await readUser(username);
    ctx.state.log = { replica: served };
    if (!user) throw notFound(`no user "${username}"`);
    ctx.body = { username: user.username, roles: user.roles };
  });

  // The public key set, for anyone who verifies our tokens (the gateway reads its PEM copies).
  router.get('/.well-known/jwks.json', async (ctx) => {
    ctx.set('Cache-Control', 'max-age=60');
    ctx.body = await publicKeys.published();
  });

  // What this instance can do: logins need a replica (or the primary) that answers, writes need the
  // primary. The gateway sends requests only to an instance that can log in.
  router.get('/health', async (ctx) => {
    await refuseIfStale(replica?.mayAnswer);
    const logins = await replicas.read((db) => db.get('SELECT 1 FROM users LIMIT 1')).then(
      () => true,
      () => false,
    );
    if (!logins) throw new Problem(503, 'Service Unavailable', 'neither a replica nor the primary of the users database answers', { 'Retry-After': '1' });
    ctx.body = { status: 'ok', logins, writes: primary.available };
  });

  // Asked by the other hosts' instances (lib/replica-quorum.ts); not routed by the gateway.
  router.get('/replica', async (ctx) => {
    if (!replica) throw notFound('this instance has no replica of its own: its host holds the primary, or there is one host');
    ctx.body = { connected: await replica.connected() };
  });

  // Rows that can no longer matter (tokens past their exp, failures long forgotten): deleted hourly.
  const forgetExpiredRows = () => {
    const now = Date.now();
    return primary.transaction(async (tx) => {
      await tx.run('DELETE FROM used_refresh_tokens WHERE expires_at < ?', [Math.floor(now / 1000)]);
      await tx.run('DELETE FROM revoked_families WHERE expires_at < ?', [Math.floor(now / 1000)]);
      await tx.run('DELETE FROM login_failures WHERE last_failure < ? AND locked_until < ?', [now - settings.lockout.forgetAfterSeconds * 1000, now]);
    });
  };
  repeatUntilClosed(closed.signal, 60 * 60 * 1000, forgetExpiredRows, 'forgetting expired rows');

  addDocsRoutes(router);
  return serviceApp({
    router,
    description: usersDocument,
    name: 'users',
    // A login needs no key (it writes nothing, and must not need the primary); a refresh is never
    // replayed (its token's second use revokes its login).
    middleware: [idempotency(primary, closed.signal, /^\/(login|refresh)\/?$/i)],
    log,
    close: async () => {
      closed.abort();
      await replicas.close();
      await primary.close();
    },
  });
}

if (import.meta.main) {
  await serve(await createUsersApp(await openUsersDeps(config.users, config.jwt)), config.users.port, 'users');
}

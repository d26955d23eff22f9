// The users service: registers users and checks passwords. A successful login answers with JWTs
// that it signs itself (RS256, kid): it is the only holder of the private key. Writes go to the
// LiteFS primary; login reads rotate over the two secondaries (see lib/rotation.ts), falling back
// to the primary.
import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import { config } from './lib/config.ts';
import { isUniqueViolation, type Transaction } from './lib/db.ts';
import { addDocsRoutes } from './lib/docs.ts';
import { conflict, forbidden, notFound, serve, tooManyRequests, unauthorized, unprocessable, type LogState } from './lib/http.ts';
import { isConnectedSecondary } from './lib/litefs.ts';
import { Lockout } from './lib/lockout.ts';
import { hashIterations, hashPassword, verifyPassword } from './lib/password.ts';
import { openUsersPrimary } from './lib/users-db.ts';
import { ReadRotation } from './lib/rotation.ts';
import { loadPublicKeys, requireRole, ROLES, tokenSigner, verifyToken, type Role } from './lib/tokens.ts';
import { fields, oneOrMoreOf, string, validUsername } from './lib/validate.ts';
import { usersDocument } from './users.openapi.ts';

const { users: settings, jwt } = config;

const PASSWORD_MIN_CHARACTERS = 8;
const PASSWORD_MAX_BYTES = 1024; // PBKDF2 cost grows with the password: cap it against denial of service

interface UserRow {
  id: number;
  username: string;
  password_hash: string;
  roles: string;
}

interface User {
  id: number;
  username: string;
  passwordHash: string;
  roles: Role[];
}

const primary = await openUsersPrimary();
const replicas = new ReadRotation(
  settings.replicaDbs.map((file, index) => ({ name: `secondary${index + 1}`, file })),
  { name: 'primary', db: primary },
  {
    ready: settings.litefs ? isConnectedSecondary : undefined,
    onFailure: (name, error) => console.error(`replica ${name} skipped: ${(error as Error).message}`),
  },
);
const publicKeys = await loadPublicKeys(jwt.publicKeys);
const sign = await tokenSigner(jwt.privateKeys);
const accessTokens = { keys: publicKeys.getKey, issuer: jwt.issuer, audience: jwt.audience };
const refreshTokens = { keys: publicKeys.getKey, issuer: jwt.issuer, audience: jwt.refreshAudience };
// Unknown users are checked against this, so they cost as much time as a wrong password.
const dummyHash = await hashPassword(randomUUID(), settings.pbkdf2Iterations);

const FIND_USER = `
  SELECT users.id, users.username, users.password_hash, group_concat(user_roles.role) AS roles
  FROM users JOIN user_roles ON user_roles.user_id = users.id
  WHERE users.username = ?
  GROUP BY users.id`;

async function findUser(db: Transaction, username: string): Promise<User | undefined> {
  const row = await db.get<UserRow>(FIND_USER, [username]);
  return row && { id: row.id, username: row.username, passwordHash: row.password_hash, roles: row.roles.split(',').sort() as Role[] };
}

// Replication is asynchronous: a user registered a moment ago may not be on the secondary yet,
// so a miss there is asked again of the primary before it counts as "no such user".
async function readUser(username: string): Promise<{ user?: User; served: string }> {
  const { value: user, served } = await replicas.read((db) => findUser(db, username));
  if (user || served === 'primary') return { user, served };
  return { user: await findUser(primary, username), served: `${served}-miss,primary` };
}

function password(value: unknown, name = 'password'): string {
  const text = string(value, name, { min: PASSWORD_MIN_CHARACTERS, max: PASSWORD_MAX_BYTES });
  if (Buffer.byteLength(text) > PASSWORD_MAX_BYTES) throw unprocessable(`${name} must be at most ${PASSWORD_MAX_BYTES} bytes`);
  return text;
}

// Claims shaped like the course's mkclaims.py. The refresh token has its own audience and no
// roles, so no endpoint that wants an access token can be passed one.
function claimsFor(user: User) {
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
    iat: now,
    exp: now + settings.refreshTokenSeconds,
  };
  return { access, refresh };
}

// New tokens for a user, the refresh token recorded (on the primary) as the current one of its
// family: a login starts a family, each refresh continues it. A login checked the password against
// a hash that may come from a replica a moment behind: the token is recorded only if the primary
// still holds that hash, so a password changed a moment ago cannot be used; else undefined.
async function issueTokens(db: Transaction, user: User, family: string) {
  const { access, refresh } = claimsFor(user);
  const { changes } = await db.run(
    `INSERT INTO refresh_tokens (jti, family, user_id, expires_at)
     SELECT ?, ?, id, ? FROM users WHERE id = ? AND password_hash = ?`,
    [refresh.jti, family, refresh.exp, user.id, user.passwordHash],
  );
  return changes ? { access, refresh } : undefined;
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

const lockout = new Lockout(settings.lockout);

function refuseIfLockedOut(username: string): void {
  const wait = lockout.waitSeconds(username);
  if (wait) throw tooManyRequests(`too many failed logins for "${username}": try again in ${wait} s`, wait);
}

const router = new Router<LogState>();

router.post('/users', async (ctx) => {
  const body = fields(ctx.request.body, ['username', 'password', 'roles']);
  const username = validUsername(body.username);
  const secret = password(body.password);
  const roles = oneOrMoreOf(body.roles, 'roles', ROLES);
  if (roles.some((role) => role !== 'Student')) {
    const caller = await verifyToken(ctx.get('Authorization'), accessTokens);
    ctx.state.user = caller.username;
    requireRole(caller, 'Registrar');
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

router.post('/login', async (ctx) => {
  const body = fields(ctx.request.body, ['username', 'password']);
  const username = string(body.username, 'username', { max: 64 }).toLowerCase();
  const secret = password(body.password);
  refuseIfLockedOut(username);
  const { user, served } = await readUser(username);
  ctx.state.log = { replica: served };
  const matches = await verifyPassword(secret, user?.passwordHash ?? dummyHash);
  if (!user || !matches) {
    lockout.failed(username);
    throw unauthorized('wrong username or password');
  }
  const claims = await issueTokens(primary, user, randomUUID());
  if (!claims) throw unauthorized('wrong username or password'); // the password has just been changed
  lockout.succeeded(username);
  ctx.state.user = user.username;
  rehashIfWeak(user, secret);
  ctx.body = await signed(claims);
});

// A refresh token works once. Its state is read and changed on the primary, in one transaction:
// a replica may not know yet that it was used.
router.post('/refresh', async (ctx) => {
  fields(ctx.request.body ?? {}, []);
  const caller = await verifyToken(ctx.get('Authorization'), refreshTokens);
  ctx.state.user = caller.username;
  const outcome = await primary.transaction(async (tx) => {
    const token = await tx.get<{ family: string; state: string }>('SELECT family, state FROM refresh_tokens WHERE jti = ?', [caller.jti ?? '']);
    if (!token) return { refused: 'this refresh token is not known' };
    if (token.state === 'revoked') return { refused: 'this refresh token has been revoked: log in again' };
    if (token.state === 'used') {
      // Used twice: one of the two holders stole it. Neither may go on (the revocation commits).
      await tx.run("UPDATE refresh_tokens SET state = 'revoked' WHERE family = ?", [token.family]);
      return { refused: 'this refresh token was used before, so every token of this login is revoked: log in again' };
    }
    const user = await findUser(tx, caller.username);
    if (!user) return { refused: 'the account no longer exists' };
    await tx.run("UPDATE refresh_tokens SET state = 'used' WHERE jti = ?", [caller.jti]);
    return { claims: await issueTokens(tx, user, token.family) }; // read from the primary: current
  });
  if (!outcome.claims) throw unauthorized(outcome.refused ?? 'the account no longer exists');
  ctx.body = await signed(outcome.claims);
});

// Ends the login the refresh token belongs to: none of its refresh tokens works any more. Access
// tokens already issued live out their short lifetime (ACCESS_TOKEN_SECONDS).
router.post('/logout', async (ctx) => {
  fields(ctx.request.body ?? {}, []);
  const caller = await verifyToken(ctx.get('Authorization'), refreshTokens);
  ctx.state.user = caller.username;
  await primary.run("UPDATE refresh_tokens SET state = 'revoked' WHERE family = (SELECT family FROM refresh_tokens WHERE jti = ?)", [caller.jti ?? '']);
  ctx.status = 204;
});

// The user (who must also give the current password: a stolen access token is not enough) or a
// Registrar sets a new password. Every refresh token of that user is revoked.
router.put('/users/:username/password', async (ctx) => {
  const caller = await verifyToken(ctx.get('Authorization'), accessTokens);
  ctx.state.user = caller.username;
  const username = ctx.params.username.toLowerCase();
  const self = caller.username === username;
  if (!self && !caller.roles.includes('Registrar')) throw forbidden('only the user themselves or a Registrar may change a password');
  const body = fields(ctx.request.body, ['new_password'], self ? ['current_password'] : []);
  const newSecret = password(body.new_password, 'new_password');
  if (self && body.current_password === undefined) throw unprocessable('missing field(s): current_password');
  const user = await findUser(primary, username);
  if (!user) throw notFound(`no user "${username}"`);
  if (self) {
    refuseIfLockedOut(username);
    if (!(await verifyPassword(password(body.current_password, 'current_password'), user.passwordHash))) {
      lockout.failed(username);
      throw forbidden('current_password is not the password of this account');
    }
  }
  const passwordHash = await hashPassword(newSecret, settings.pbkdf2Iterations);
  const revoked = await primary.transaction(async (tx) => {
    await tx.run('UPDATE users SET password_hash = ? WHERE id = ?', [passwordHash, user.id]);
    return (await tx.run("UPDATE refresh_tokens SET state = 'revoked' WHERE user_id = ? AND state <> 'revoked'", [user.id])).changes;
  });
  ctx.state.log = { account: username, revoked: String(revoked) };
  ctx.status = 204;
});

router.get('/users/:username', async (ctx) => {
  const caller = await verifyToken(ctx.get('Authorization'), accessTokens);
  ctx.state.user = caller.username;
  const username = ctx.params.username.toLowerCase();
  if (caller.username !== username && !caller.roles.includes('Registrar')) {
    throw forbidden('only the user themselves or a Registrar may see an account');
  }
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

router.get('/health', async (ctx) => {
  await primary.get('SELECT 1 FROM users LIMIT 1');
  ctx.body = { status: 'ok' };
});

// A refresh token past its exp can never be presented again: forget such rows once an hour.
setInterval(() => {
  primary.run('DELETE FROM refresh_tokens WHERE expires_at < ?', [Math.floor(Date.now() / 1000)]).catch((error: Error) => console.error(`forgetting expired refresh tokens failed: ${error.message}`));
}, 60 * 60 * 1000).unref();

addDocsRoutes(router);
serve(router, settings.port, 'users', usersDocument);

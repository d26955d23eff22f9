// The users service: registers users and checks passwords. A successful login answers with JWTs
// that it signs itself (RS256, kid): it is the only holder of the private key. Writes go to the
// LiteFS primary; login reads rotate over the two secondaries (see lib/rotation.ts), falling back
// to the primary.
import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import { config } from './lib/config.ts';
import { Database, isUniqueViolation } from './lib/db.ts';
import { conflict, forbidden, notFound, serve, unauthorized, unprocessable, type LogState } from './lib/http.ts';
import { isConnectedSecondary } from './lib/litefs.ts';
import { hashPassword, verifyPassword } from './lib/password.ts';
import { openUsersPrimary } from './lib/users-db.ts';
import { ReadRotation } from './lib/rotation.ts';
import { loadPublicKeys, requireRole, ROLES, tokenSigner, verifyToken, watchKeySet, type Role } from './lib/tokens.ts';
import { fields, oneOrMoreOf, string, validUsername } from './lib/validate.ts';

const { users: settings, jwt } = config;

const PASSWORD_MIN_CHARACTERS = 8;
const PASSWORD_MAX_BYTES = 1024; // PBKDF2 cost grows with the password: cap it against denial of service

interface UserRow {
  username: string;
  password_hash: string;
  roles: string;
}

interface User {
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
const publishedKeys = await watchKeySet(jwt.publicKeys, (set) => set);
const sign = await tokenSigner(jwt.privateKeys);
const accessTokens = { keys: publicKeys, issuer: jwt.issuer, audience: jwt.audience };
const refreshTokens = { keys: publicKeys, issuer: jwt.issuer, audience: jwt.refreshAudience };
// Unknown users are checked against this, so they cost as much time as a wrong password.
const dummyHash = await hashPassword(randomUUID(), settings.pbkdf2Iterations);

const FIND_USER = `
  SELECT users.username, users.password_hash, group_concat(user_roles.role) AS roles
  FROM users JOIN user_roles ON user_roles.user_id = users.id
  WHERE users.username = ?
  GROUP BY users.id`;

async function findUser(db: Database, username: string): Promise<User | undefined> {
  const row = await db.get<UserRow>(FIND_USER, [username]);
  return row && { username: row.username, passwordHash: row.password_hash, roles: row.roles.split(',').sort() as Role[] };
}

// Replication is asynchronous: a user registered a moment ago may not be on the secondary yet,
// so a miss there is asked again of the primary before it counts as "no such user".
async function readUser(username: string): Promise<{ user?: User; served: string }> {
  const { value: user, served } = await replicas.read((db) => findUser(db, username));
  if (user || served === 'primary') return { user, served };
  return { user: await findUser(primary, username), served: `${served}-miss,primary` };
}

function password(value: unknown): string {
  const text = string(value, 'password', { min: PASSWORD_MIN_CHARACTERS, max: PASSWORD_MAX_BYTES });
  if (Buffer.byteLength(text) > PASSWORD_MAX_BYTES) throw unprocessable(`password must be at most ${PASSWORD_MAX_BYTES} bytes`);
  return text;
}

// Claims shaped like the course's mkclaims.py, signed. The refresh token has its own audience and
// no roles, so no endpoint that wants an access token can be passed one.
async function tokensFor(user: User) {
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
  return { access_token: await sign(access), refresh_token: await sign(refresh), exp: access.exp };
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
  const { user, served } = await readUser(username);
  ctx.state.log = { replica: served };
  const matches = await verifyPassword(secret, user?.passwordHash ?? dummyHash);
  if (!user || !matches) throw unauthorized('wrong username or password');
  ctx.state.user = user.username;
  ctx.body = await tokensFor(user);
});

router.post('/refresh', async (ctx) => {
  fields(ctx.request.body ?? {}, []);
  const caller = await verifyToken(ctx.get('Authorization'), refreshTokens);
  ctx.state.user = caller.username;
  const { user, served } = await readUser(caller.username);
  ctx.state.log = { replica: served };
  if (!user) throw unauthorized('the account no longer exists');
  ctx.body = await tokensFor(user);
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
  ctx.body = await publishedKeys();
});

router.get('/health', async (ctx) => {
  await primary.get('SELECT 1 FROM users LIMIT 1');
  ctx.body = { status: 'ok' };
});

serve(router, settings.port, 'users');

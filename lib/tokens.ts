// The JWTs: signed by the users service (the only holder of the private key), checked by the
// gateway, and verified again by every service with the public key set, so that a request that
// reaches an instance directly gets nothing it should not.
import { readFile, stat } from 'node:fs/promises';
import { calculateJwkThumbprint, createLocalJWKSet, errors, exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JSONWebKeySet, type JWK, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { config } from './config.ts';
import { forbidden, unauthorized } from './problem.ts';

export const ROLES = ['Student', 'Instructor', 'Registrar'] as const;
export type Role = (typeof ROLES)[number];

export interface Caller {
  username: string;
  roles: Role[];
  claims: JWTPayload; // every verified claim, for what only one endpoint needs (a refresh token's)
}

export interface TokenRules {
  keys: JWTVerifyGetKey;
  issuer: string;
  audience: string;
}

// A key set file, read again when bin/mkjwks --rotate replaces it, so a rotation needs no restart.
// Its mtime is looked at once a second at most, or at once when `now` is asked (a token signed by a
// key not seen yet). `use` turns the file's JSON into what the caller works with.
export async function watchKeySet<T>(file: string, use: (set: JSONWebKeySet) => T | Promise<T>): Promise<(now?: boolean) => Promise<T>> {
  const load = async () => {
    const { mtimeMs } = await stat(file);
    return { mtimeMs, value: await use(JSON.parse(await readFile(file, 'utf8')) as JSONWebKeySet), checked: Date.now() };
  };
  let current = await load();
  return async (now = false) => {
    if (!now && Date.now() - current.checked < 1000) return current.value;
    current.checked = Date.now();
    if ((await stat(file)).mtimeMs !== current.mtimeMs) current = await load();
    return current.value;
  };
}

export interface PublicKeys {
  getKey: JWTVerifyGetKey; // for jwtVerify
  published(): Promise<JSONWebKeySet>; // the set as the file holds it, for /.well-known/jwks.json
}

export async function loadPublicKeys(file: string): Promise<PublicKeys> {
  const keys = await watchKeySet(file, (set) => {
    if (set.keys.some((key) => 'd' in key)) throw new Error(`${file} holds a private key; give the public key set`);
    return { set, getKey: createLocalJWKSet(set) };
  });
  return {
    async getKey(header, token) {
      try {
        return await (await keys()).getKey(header, token);
      } catch (error) {
        // bin/mkjwks publishes a new key before anyone signs with it: look at the file again.
        if (error instanceof errors.JWKSNoMatchingKey) return (await keys(true)).getKey(header, token);
        throw error;
      }
    },
    published: async () => (await keys()).set,
  };
}

// Signs claims with the first key of the private set: RS256, with its kid and typ JWT.
export async function tokenSigner(file: string): Promise<(claims: JWTPayload) => Promise<string>> {
  const signingKey = await watchKeySet(file, async ({ keys: [jwk] }) => ({ kid: jwk.kid, key: await importJWK(jwk, 'RS256') }));
  return async (claims) => {
    const { kid, key } = await signingKey();
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' }).sign(key);
  };
}

// A new RS256 signing key, as the private and the public JWK, each labelled with its kid (the
// public key's thumbprint), alg and use: bin/mkjwks writes them into key sets, tests likewise.
export async function newSigningKey(): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const label = { kid: await calculateJwkThumbprint(publicJwk), alg: 'RS256', use: 'sig' };
  return { privateJwk: { ...(await exportJWK(privateKey)), ...label }, publicJwk: { ...publicJwk, ...label } };
}

export function bearerOf(authorization: string | undefined): string | undefined {
  const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/.exec(authorization ?? '');
  return match?.[1];
}

// Only RS256 is accepted (never "none", never HS256 keyed with the public key), and a token
// must carry exp: one without it would never expire. nbf and iat may not be in the future (beyond
// the clock skew allowed), and sub must be a string: it is who the caller is.
export async function verifyToken(authorization: string | undefined, rules: TokenRules): Promise<Caller> {
  const token = bearerOf(authorization);
  if (!token) throw unauthorized('send "Authorization: Bearer <token>"');
  try {
    const { payload } = await jwtVerify(token, rules.keys, {
      algorithms: ['RS256'],
      issuer: rules.issuer,
      audience: rules.audience,
      requiredClaims: ['sub', 'exp'],
      clockTolerance: config.jwt.clockSkewSeconds,
    });
    if (typeof payload.sub !== 'string') throw unauthorized('the token\'s sub claim is not a string');
    if (payload.iat !== undefined && !(payload.iat <= Date.now() / 1000 + config.jwt.clockSkewSeconds)) {
      throw unauthorized('the token\'s iat claim is in the future');
    }
    const roles = payload.roles ?? [];
    if (!Array.isArray(roles) || !roles.every((role) => ROLES.includes(role as Role))) {
      throw unauthorized('the token\'s roles claim is not a list of known roles');
    }
    return { username: payload.sub, roles: roles as Role[], claims: payload };
  } catch (error) {
    if (error instanceof errors.JOSEError) throw unauthorized(`invalid token: ${describe(error)}`);
    throw error;
  }
}

function describe(error: InstanceType<typeof errors.JOSEError>): string {
  if (error instanceof errors.JWTExpired) return 'it has expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `claim "${error.claim}" ${error.reason === 'missing' ? 'is missing' : 'is not accepted'}`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the signature does not verify';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'only RS256 is accepted';
  if (error instanceof errors.JWKSNoMatchingKey) return 'no known key signed it';
  return 'it is malformed';
}

// Verifies a request's bearer token, names the caller in the request log, and, if roles are given,
// requires one of them. Identity comes only from the verified token, never from a path or a body.
export async function authenticate(ctx: { get(field: string): string; state: { user?: string } }, rules: TokenRules, ...roles: Role[]): Promise<Caller> {
  const caller = await verifyToken(ctx.get('Authorization'), rules);
  ctx.state.user = caller.username;
  if (roles.length) requireRole(caller, ...roles);
  return caller;
}

export function requireRole(caller: Caller, ...allowed: Role[]): void {
  if (!caller.roles.some((role) => allowed.includes(role))) {
    throw forbidden(`this needs the role ${allowed.join(' or ')}`);
  }
}

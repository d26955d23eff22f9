// Who is calling: the bearer JWT that KrakenD signed, verified again by the service itself with
// the public key set, so a request that reaches an instance directly gets nothing it should not.
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { forbidden, unauthorized } from './http.ts';

export const ROLES = ['Student', 'Instructor', 'Registrar'] as const;
export type Role = (typeof ROLES)[number];

export interface Caller {
  username: string;
  roles: Role[];
}

export interface TokenRules {
  keys: JWTVerifyGetKey;
  issuer: string;
  audience: string;
}

export async function loadPublicKeys(file: string): Promise<JWTVerifyGetKey> {
  const set = JSON.parse(await readFile(file, 'utf8')) as JSONWebKeySet;
  if (set.keys.some((key) => 'd' in key)) throw new Error(`${file} holds a private key; give the public key set`);
  return createLocalJWKSet(set);
}

export function bearerOf(authorization: string | undefined): string | undefined {
  const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)$/.exec(authorization ?? '');
  return match?.[1];
}

// Only RS256 is accepted (never "none", never HS256 keyed with the public key), and a token
// must carry exp: one without it would never expire.
export async function verifyToken(authorization: string | undefined, rules: TokenRules): Promise<Caller> {
  const token = bearerOf(authorization);
  if (!token) throw unauthorized('send "Authorization: Bearer <token>"');
  try {
    const { payload } = await jwtVerify(token, rules.keys, {
      algorithms: ['RS256'],
      issuer: rules.issuer,
      audience: rules.audience,
      requiredClaims: ['sub', 'exp'],
    });
    const roles = payload.roles ?? [];
    if (!Array.isArray(roles) || !roles.every((role) => ROLES.includes(role as Role))) {
      throw unauthorized('the token\'s roles claim is not a list of known roles');
    }
    return { username: String(payload.sub), roles: roles as Role[] };
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

export function requireRole(caller: Caller, ...allowed: Role[]): void {
  if (!caller.roles.some((role) => allowed.includes(role))) {
    throw forbidden(`this needs the role ${allowed.join(' or ')}`);
  }
}

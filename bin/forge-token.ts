// usage: bin/node bin/forge-token.ts KIND TOKEN
//
// Makes the bad tokens that bin/smoke.sh shows the gateway refusing, from a valid access TOKEN, and
// prints it. KIND: expired (signed with the real key, JWKS_PRIVATE: only this host has it),
// wrong-key, alg-none, hs256-public-key, tampered-roles. A tool for testing your own installation,
// nothing else.
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { config } from '../lib/config.ts';
import { commandLine, refuse } from './cli.ts';

const [kind, token] = commandLine(import.meta.filename, { min: 2, max: 2 }).operands;
const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const signWith = (key: CryptoKey | Uint8Array, payload: JWTPayload) =>
  new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: header.kid, typ: 'JWT' }).sign(key);

const forgers: Record<string, () => Promise<string>> = {
  async expired() {
    const { keys } = JSON.parse(await readFile(config.jwt.privateKeys, 'utf8')) as { keys: JWK[] };
    const now = Math.floor(Date.now() / 1000);
    return signWith(await importJWK(keys[0], 'RS256'), { ...claims, iat: now - 120, exp: now - 60 });
  },
  async 'wrong-key'() {
    return signWith((await generateKeyPair('RS256')).privateKey, claims);
  },
  async 'alg-none'() {
    return `${part({ alg: 'none', typ: 'JWT' })}.${part({ ...claims, roles: ['Registrar'] })}.`;
  },
  // The classic confusion: HS256 keyed with the public key, which anyone can fetch.
  async 'hs256-public-key'() {
    const pem = await readFile(`${config.jwt.gatewayKeys}/${header.kid}.pem`);
    const signed = `${part({ alg: 'HS256', kid: header.kid, typ: 'JWT' })}.${part({ ...claims, roles: ['Registrar'] })}`;
    return `${signed}.${createHmac('sha256', pem).update(signed).digest('base64url')}`;
  },
  async 'tampered-roles'() {
    const [head, , signature] = token.split('.');
    return `${head}.${part({ ...claims, roles: ['Registrar'] })}.${signature}`;
  },
};
if (!Object.hasOwn(forgers, kind)) refuse(import.meta.filename, `unknown kind "${kind}"`);
const header = decodeProtectedHeader(token);
const claims = decodeJwt(token);
console.log(await forgers[kind]());

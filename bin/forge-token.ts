// Makes the bad tokens that bin/smoke.sh shows the gateway refusing, from a valid access token:
//   node bin/forge-token.ts KIND TOKEN
// KIND: expired (signed with the real key: only this host has it), wrong-key, alg-none,
// hs256-public-key, tampered-roles. A tool for testing your own installation, nothing else.
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import process from 'node:process';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { config } from '../lib/config.ts';

const [kind, token] = process.argv.slice(2);
if (!kind || !token) {
  console.error('usage: node bin/forge-token.ts expired|wrong-key|alg-none|hs256-public-key|tampered-roles TOKEN');
  process.exit(2);
}
const header = decodeProtectedHeader(token);
const claims = decodeJwt(token);
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
if (!forgers[kind]) {
  console.error(`unknown kind "${kind}"`);
  process.exit(2);
}
console.log(await forgers[kind]());

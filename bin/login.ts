// Logs in at the users service and signs the claims it returns with the private key set, as
// KrakenD's auth/signer does on /login (RS256, kid in the header), printing the same JSON.
// A developer's tool for calling the enrollment instances directly while no gateway runs.
// Usage: node bin/login.ts USERNAME [PASSWORD]   (password defaults to the dev one)
import { readFile } from 'node:fs/promises';
import process from 'node:process';
import { importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { config } from '../lib/config.ts';
import { DEV_PASSWORD } from '../lib/roster.ts';

const [username, password = DEV_PASSWORD] = process.argv.slice(2);
if (!username) {
  console.error('usage: bin/login.ts USERNAME [PASSWORD]');
  process.exit(2);
}

const reply = await fetch(`http://127.0.0.1:${config.users.port}/login`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ username, password }),
});
const body = await reply.json();
if (!reply.ok) {
  console.error(JSON.stringify(body));
  process.exit(1);
}

const { keys } = JSON.parse(await readFile(config.jwt.privateKeys, 'utf8')) as { keys: JWK[] };
const key = await importJWK(keys[0], 'RS256');
const sign = (claims: JWTPayload) => new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: keys[0].kid, typ: 'JWT' }).sign(key);
console.log(JSON.stringify({ ...body, access_token: await sign(body.access_token), refresh_token: await sign(body.refresh_token) }));

// Makes the RS256 key pair as JSON Web Key *sets*: the private set for KrakenD's signer, the
// public set for every validator. Existing keys are kept unless --rotate is given.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { config } from '../lib/config.ts';

const { privateKeys, publicKeys } = config.jwt;
const rotate = process.argv.includes('--rotate');

if (existsSync(privateKeys) && existsSync(publicKeys) && !rotate) {
  console.log(`keeping the keys in ${path.dirname(privateKeys)} (--rotate makes new ones)`);
} else {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const label = { kid, alg: 'RS256', use: 'sig' };
  await mkdir(path.dirname(privateKeys), { recursive: true, mode: 0o700 });
  await writeFile(privateKeys, JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), ...label }] }, null, 2), { mode: 0o600 });
  await writeFile(publicKeys, JSON.stringify({ keys: [{ ...publicJwk, ...label }] }, null, 2));
  console.log(`made key ${kid}: ${privateKeys} (private), ${publicKeys} (public)`);
}

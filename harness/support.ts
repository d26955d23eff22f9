// Test helpers: a service started as a real process on a free port, a throw-away key pair that
// signs tokens exactly as the users service does (RS256, kid in the header), and fetch JSON.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK, type JWTHeaderParameters, type JWTPayload } from 'jose';
import { ROOT } from '../lib/config.ts';
import { newSigningKey } from '../lib/tokens.ts';

export const ISSUER = 'enrollment-gateway/users';
export const AUDIENCE = 'enrollment-gateway';
export const REFRESH_AUDIENCE = 'enrollment-gateway/refresh';

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `${prefix}-`));
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export interface TestKeys {
  publicFile: string;
  privateFile: string;
  kid: string;
  privateKey: CryptoKey;
  // Signs claims as the users service does; `aud`/`iss`/`exp` default to a valid access token.
  sign(claims: JWTPayload, options?: { key?: CryptoKey; kid?: string }): Promise<string>;
  accessToken(username: string, roles: string[], extra?: JWTPayload): Promise<string>;
  // Checks a token's RS256 signature with this key and returns its header and claims.
  decode(token: string): Promise<{ header: JWTHeaderParameters; claims: JWTPayload }>;
}

// A throw-away key pair, written where the services read keys (jwks-public.json, jwks-private.json).
export async function makeTestKeys(dir: string): Promise<TestKeys> {
  const { privateJwk, publicJwk } = await newSigningKey();
  const publicFile = path.join(dir, 'jwks-public.json');
  const privateFile = path.join(dir, 'jwks-private.json');
  await writeFile(publicFile, JSON.stringify({ keys: [publicJwk] }));
  await writeFile(privateFile, JSON.stringify({ keys: [privateJwk] }));
  return testKeysFrom(privateFile, publicFile);
}

// Signs and checks tokens with the key a private key set file holds (the one bin/mkjwks wrote).
export async function testKeysFrom(privateFile: string, publicFile: string): Promise<TestKeys> {
  const [jwk] = (JSON.parse(await readFile(privateFile, 'utf8')) as { keys: JWK[] }).keys;
  const { d, p, q, dp, dq, qi, ...publicJwk } = jwk;
  const kid = jwk.kid!;
  const privateKey = (await importJWK(jwk, 'RS256')) as CryptoKey;
  const publicKey = await importJWK(publicJwk, 'RS256');
  const sign = (claims: JWTPayload, options: { key?: CryptoKey; kid?: string } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ aud: AUDIENCE, iss: ISSUER, iat: now, exp: now + 600, ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? kid, typ: 'JWT' })
      .sign(options.key ?? privateKey);
  };
  return {
    publicFile,
    privateFile,
    kid,
    privateKey,
    sign,
    accessToken: (username, roles, extra = {}) => sign({ sub: username, jti: crypto.randomUUID(), roles, ...extra }),
    decode: async (token) => {
      const { protectedHeader, payload } = await jwtVerify(token, publicKey, { algorithms: ['RS256'] });
      return { header: protectedHeader, claims: payload };
    },
  };
}

export interface RunningService {
  url: string;
  port: number;
  logs: string[];
  child: ChildProcess;
  stop(): Promise<void>;
}

// Starts `node <entry>` (or `deno run -A <entry>`) and waits for "listening".
export async function startService(
  entry: string,
  env: Record<string, string>,
  options: { runtime?: 'node' | 'deno'; timeoutMs?: number } = {},
): Promise<RunningService> {
  const port = await freePort();
  const command =
    options.runtime === 'deno'
      ? [path.join(ROOT, 'node_modules/.bin/deno'), 'run', '-A', entry]
      : [process.execPath, entry];
  const child = spawn(command[0], command.slice(1), {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${entry} did not start:\n${logs.join('\n')}`)), options.timeoutMs ?? 30_000);
    const collect = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        logs.push(line);
        if (line.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      }
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${entry} exited with ${code}:\n${logs.join('\n')}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    logs,
    child,
    // SIGTERM, and SIGKILL if it has not gone after five seconds: a test never hangs on it.
    stop: async () => {
      if (!isRunning(child)) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

// The users service on a plain SQLite file (no LiteFS: the file is its own replica), with a
// throw-away key pair, as the Deno test and bin/bench-login.ts want it (the other tests run it
// in their own process: test/in-process.ts).
export async function startUsers(options: { runtime?: 'node' | 'deno'; iterations?: number; env?: Record<string, string> } = {}) {
  const dir = await tempDir('users');
  const keys = await makeTestKeys(dir);
  const db = path.join(dir, 'users.db');
  const service = await startService(
    'users.ts',
    {
      USERS_LITEFS: 'off',
      USERS_DB: db,
      USERS_REPLICA_DBS: `${db},${db}`,
      JWKS_PUBLIC: keys.publicFile,
      JWKS_PRIVATE: keys.privateFile,
      PBKDF2_ITERATIONS: String(options.iterations ?? 1000),
      ...options.env,
    },
    { runtime: options.runtime },
  );
  return { service, keys, db };
}

// A base port for a formation of the test's own: Foreman's scheme uses BASE_PORT + 0..499.
export function randomBasePort(): number {
  return 20_000 + 100 * Math.floor(Math.random() * 300);
}

// The q-quantile (0..1) of some measurements, for the benchmark scripts' printouts.
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

export async function call(
  url: string,
  options: { method?: string; body?: unknown; raw?: string; token?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.raw;
  if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const response = await fetch(url, { method: options.method ?? (body === undefined ? 'GET' : 'POST'), headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: the test sees the text
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

// The services inside the test's own process, as koa's own tests run an app: each built from its
// dependencies (a throw-away database, the test's key pair, settings), listening on a free loopback
// port, with the lines it logs kept for the test to read.
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createEnrollmentApp, openEnrollmentDeps } from '../enrollment.ts';
import { config } from '../lib/config.ts';
import { listen, type LogWriter, type ServiceApp } from '../lib/http.ts';
import { createUsersApp, openUsersDeps } from '../users.ts';
import { makeTestKeys, tempDir, type TestKeys } from '../harness/support.ts';

export interface LocalService {
  url: string;
  port: number;
  logs: string[];
  // Closes the server, then the app (its timers and databases).
  stop(): Promise<void>;
}

async function serveLocally(build: (log: LogWriter) => Promise<ServiceApp>): Promise<LocalService> {
  const logs: string[] = [];
  const app = await build((line) => logs.push(line));
  const server = await listen(app, 0);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    logs,
    stop: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
      await app.close();
    },
  };
}

const jwtWith = (keys: TestKeys) => ({ ...config.jwt, publicKeys: keys.publicFile, privateKeys: keys.privateFile });

// The users service on a plain SQLite file, which is also its own two replicas (no LiteFS).
export async function usersInProcess(options: { keys?: TestKeys; iterations?: number; lockout?: Partial<typeof config.users.lockout> } = {}) {
  const dir = await tempDir('users');
  const keys = options.keys ?? (await makeTestKeys(dir));
  const db = path.join(dir, 'users.db');
  const settings = {
    ...config.users,
    primaryDb: db,
    replicaDbs: [db, db],
    litefs: false,
    pbkdf2Iterations: options.iterations ?? 1000,
    lockout: { ...config.users.lockout, ...options.lockout },
  };
  const service = await serveLocally(async (log) => createUsersApp(await openUsersDeps(settings, jwtWith(keys), log)));
  return { service, keys, db };
}

// The enrollment service on `db` (created with its schema if missing).
export function enrollmentInProcess(db: string, keys: TestKeys): Promise<LocalService> {
  return serveLocally(async (log) => createEnrollmentApp(await openEnrollmentDeps({ ...config.enrollment, db }, jwtWith(keys), log)));
}

/**
 * Starting the auth role: storage, the AuthServer, the Auth API listener and the admin
 * identity that admin commands on this host use (<data-dir>/admin-identity.json, 0600).
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Server } from 'node:http';
import type { Backend } from '../storage/backend.ts';
import { openBackend } from '../storage/open.ts';
import type { StorageSpec } from '../storage/open.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import { ensurePrivateDir, writeFileAtomic } from '../core/fs.ts';
import { certificatePin } from '../core/tls-pin.ts';
import { newTlsKeyPair, loadOrCreateTlsKey } from '../core/tls-keys.ts';
import { formatHostPort } from '../core/text.ts';
import { AuthServer } from './auth-server.ts';
import type { ClusterSettings } from '../api/auth-types.ts';
import { startAuthApi } from './api-server.ts';
import { serverPaths } from '../core/server-paths.ts';
import type { IdentityFile } from '../core/server-paths.ts';

/** An identity file: how to reach auth, and the client certificate to do it with (the paths and shape: src/core/server-paths.ts). */
export type { IdentityFile } from '../core/server-paths.ts';

/** How the auth role runs. */
export interface AuthServiceOptions {
  dataDir: string;
  /** Where auth keeps its data; SQLite in dataDir when absent. */
  storage?: StorageSpec;
  clusterName: string;
  authAddr: { host: string; port: number };
  settings?: Partial<ClusterSettings>;
  clock: Clock;
  log: Logger;
}

/** A running auth role. */
export interface RunningAuth {
  auth: AuthServer;
  backend: Backend;
  apiPort: number;
  /** The pin of the cluster's TLS CA, which clients pass as --ca-pin. */
  caPin: string;
  close(): Promise<void>;
}

const YEAR = 365 * 86_400_000;

/** Opens storage, the auth service and the Auth API. */
export async function startAuthService(opts: AuthServiceOptions): Promise<RunningAuth> {
  ensurePrivateDir(opts.dataDir);
  const backend = await openBackend(opts.storage ?? { kind: 'sqlite', dataDir: opts.dataDir }, { clock: opts.clock, log: opts.log });
  let api: Server | undefined;
  try {
    const auth = await AuthServer.open({ backend, clock: opts.clock, logger: opts.log, clusterName: opts.clusterName, settings: opts.settings });
    const paths = serverPaths(opts.dataDir);
    ensurePrivateDir(paths.authDir);
    const { keyPem, publicKeyPem } = loadOrCreateTlsKey(paths.authApiKey);
    const wildcard = ['0.0.0.0', '::', ''].includes(opts.authAddr.host);
    const hosts = [...new Set(['localhost', '127.0.0.1', '::1', hostname(), ...(wildcard ? [] : [opts.authAddr.host])])];
    const { certPem } = await auth.issueIdentity(publicKeyPem, 'auth', 'auth', hosts, YEAR);
    api = await startAuthApi({ auth, host: opts.authAddr.host, port: opts.authAddr.port, certPem, keyPem, log: opts.log });
    const a = api.address();
    const apiPort = typeof a === 'object' && a ? a.port : opts.authAddr.port;

    // The admin identity: admin commands on this host read it to reach auth.
    const admin = newTlsKeyPair();
    const adminCert = await auth.issueIdentity(admin.publicKeyPem, 'admin', 'admin', [], YEAR);
    const identity: IdentityFile = {
      authAddr: formatHostPort(wildcard ? '127.0.0.1' : opts.authAddr.host, apiPort),
      clusterName: opts.clusterName,
      certPem: adminCert.certPem,
      keyPem: admin.keyPem,
      caPem: adminCert.caPem,
    };
    writeFileAtomic(paths.adminIdentity, JSON.stringify(identity, null, 2) + '\n', 0o600);
    const server = api;
    return {
      auth,
      backend,
      apiPort,
      caPin: certificatePin((await auth.tlsCa()).certPem),
      async close() {
        await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
        await backend.close();
      },
    };
  } catch (err) {
    api?.close();
    await backend.close();
    throw err;
  }
}

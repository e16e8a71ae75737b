/**
 * Every path `postern serve` and the admin commands use on the jump box, in one place.
 * The tree, under the data directory (--data-dir, else $POSTERN_DATA_DIR, else
 * /var/lib/postern for root and ~/.local/share/postern for anyone else):
 *
 *   <data-dir>/                    0700
 *   ├── postern.db                 the embedded store (SQLite), 0600; -wal and -shm beside it
 *   ├── admin-identity.json        the Auth API identity admin commands on this host use, 0600
 *   ├── auth/                      0700, the auth role
 *   │   └── api.key                the Auth API listener's TLS key, 0600
 *   └── proxy/                     0700, the proxy role (never a CA key, never the database)
 *       ├── identity.json          a proxy alone (--roles proxy): its Auth API identity, 0600
 *       ├── ssh_host_key           the SSH listener's host key, 0600 (and ssh_host_key.pub)
 *       ├── web.key                the web listener's TLS key, 0600
 *       └── web.crt                its certificate chain from the cluster CA (not with --cert-file)
 *
 * An identity file (admin-identity.json, proxy/identity.json) is JSON: `IdentityFile`.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The database file's name inside the data directory. */
export const DB_FILE_NAME = 'postern.db';

/** Every path of the tree above for one data directory. */
export interface ServerPaths {
  dataDir: string;
  database: string;
  adminIdentity: string;
  authDir: string;
  authApiKey: string;
  proxyDir: string;
  proxyIdentity: string;
  proxyHostKey: string;
  proxyWebKey: string;
  proxyWebCert: string;
}

/** The paths of a data directory. */
export function serverPaths(dataDir: string): ServerPaths {
  const authDir = join(dataDir, 'auth');
  const proxyDir = join(dataDir, 'proxy');
  return {
    dataDir,
    database: join(dataDir, DB_FILE_NAME),
    adminIdentity: adminIdentityPath(dataDir),
    authDir,
    authApiKey: join(authDir, 'api.key'),
    proxyDir,
    proxyIdentity: join(proxyDir, 'identity.json'),
    proxyHostKey: join(proxyDir, 'ssh_host_key'),
    proxyWebKey: join(proxyDir, 'web.key'),
    proxyWebCert: join(proxyDir, 'web.crt'),
  };
}

/** The admin identity's path in a data directory. */
export function adminIdentityPath(dataDir: string): string {
  return join(dataDir, 'admin-identity.json');
}

/**
 * The data directory: the flag, else $POSTERN_DATA_DIR, else /var/lib/postern when
 * running as root, else ~/.local/share/postern (`homeDir` for ~, the OS's when empty).
 */
export function resolveDataDir(flag: string | undefined, env: Record<string, string | undefined>, homeDir: string, isRoot: boolean = process.getuid?.() === 0): string {
  if (flag) return flag;
  if (env.POSTERN_DATA_DIR) return env.POSTERN_DATA_DIR;
  return isRoot ? '/var/lib/postern' : join(homeDir || homedir(), '.local', 'share', 'postern');
}

/** The JSON of an identity file: where auth is, and the mutual-TLS client certificate to reach it with (PEM). */
export interface IdentityFile {
  /** The Auth API's HOST:PORT. */
  authAddr: string;
  clusterName: string;
  certPem: string;
  keyPem: string;
  /** The cluster's TLS CA, which the auth server's certificate must chain to. */
  caPem: string;
}

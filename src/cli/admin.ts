/**
 * Admin commands reach the local auth through the admin identity in the data directory.
 * Only the Auth API client is loaded here (not auth's service, storage or x509): an admin
 * command starts as fast as any other.
 */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Deps } from './deps.ts';
import type { AuthClient } from '../api/auth-client.ts';
import { remoteAuthClient } from '../auth/remote-client.ts';
import { adminIdentityPath } from '../core/server-paths.ts';
import type { IdentityFile } from '../core/server-paths.ts';
import { PosternError } from '../core/errors.ts';
import { parseHostPort } from '../core/text.ts';
import { resolveDataDir } from './options.ts';

/** Where `npm start` keeps its cluster, relative to the project (scripts/start.ts). */
export const PROJECT_DATA_DIR = join('.postern', 'data');

/** The `.postern/data` directories with an admin identity in `cwd` and its parents, nearest first. */
function projectDataDirs(cwd: string): string[] {
  const found: string[] = [];
  let dir = resolve(cwd);
  for (let i = 0; i < 64; i++) {
    const candidate = join(dir, PROJECT_DATA_DIR);
    if (existsSync(adminIdentityPath(candidate))) found.push(candidate);
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return found;
}

/**
 * The data directory an admin command uses: --data-dir, else $POSTERN_DATA_DIR, else the
 * default one when it holds an admin identity, else the cluster `npm start` runs in this
 * project (./.postern/data here or in a parent directory). `searched` lists what was tried.
 */
export function findAdminDataDir(dataDirFlag: string | undefined, deps: Deps): { dataDir: string; searched: string[] } {
  const preferred = resolveDataDir(dataDirFlag, deps);
  if (dataDirFlag || deps.env.POSTERN_DATA_DIR || existsSync(adminIdentityPath(preferred))) return { dataDir: preferred, searched: [preferred] };
  const project = projectDataDirs(deps.cwd ?? process.cwd());
  return { dataDir: project[0] ?? preferred, searched: [preferred, join(resolve(deps.cwd ?? process.cwd()), PROJECT_DATA_DIR)] };
}

/** Reads the admin identity of the data directory the flag (or the default, or the project's) names. */
export function readAdminIdentity(dataDirFlag: string | undefined, deps: Deps): IdentityFile {
  const { dataDir, searched } = findAdminDataDir(dataDirFlag, deps);
  const path = adminIdentityPath(dataDir);
  if (!existsSync(path)) {
    const where = searched.length > 1 ? `no admin identity in ${searched.join(' or ')} (nor in a .postern/data of a parent directory)` : `no admin identity in ${dataDir}`;
    throw new PosternError('ERR_POSTERN_NO_ADMIN_IDENTITY', where, {
      hint: `Run this on the auth server with the --data-dir that \`postern serve\` uses, e.g.  --data-dir /path/to/project/${PROJECT_DATA_DIR}  for a cluster of npm start (start one first:  postern serve --data-dir ${dataDir})`,
    });
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as IdentityFile;
  } catch (err) {
    throw new PosternError('ERR_POSTERN_NO_ADMIN_IDENTITY', `cannot read the admin identity ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Runs `fn` with an AuthClient acting as the admin of the local cluster (and its identity), then closes it. */
export async function withAdminClient<T>(dataDirFlag: string | undefined, deps: Deps, fn: (auth: AuthClient, identity: IdentityFile) => Promise<T>): Promise<T> {
  const identity = readAdminIdentity(dataDirFlag, deps);
  const client = remoteAuthClient(parseHostPort(identity.authAddr, 3025), identity);
  try {
    return await fn(client, identity);
  } finally {
    await client.close();
  }
}

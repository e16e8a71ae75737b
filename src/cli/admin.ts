/**
 * Admin commands reach the local auth through the admin identity in the data directory.
 * Only the Auth API client is loaded here (not auth's service, storage or x509): an admin
 * command starts as fast as any other.
 */
import { readFileSync, existsSync } from 'node:fs';
import type { Deps } from './deps.ts';
import type { AuthClient } from '../api/auth-client.ts';
import { remoteAuthClient } from '../auth/remote-client.ts';
import { adminIdentityPath } from '../core/server-paths.ts';
import type { IdentityFile } from '../core/server-paths.ts';
import { PosternError } from '../core/errors.ts';
import { parseHostPort } from '../core/text.ts';
import { resolveDataDir } from './options.ts';

/** Reads the admin identity of the data directory the flag (or the default) names. */
export function readAdminIdentity(dataDirFlag: string | undefined, deps: Deps): IdentityFile {
  const dataDir = resolveDataDir(dataDirFlag, deps);
  const path = adminIdentityPath(dataDir);
  if (!existsSync(path)) {
    throw new PosternError('ERR_POSTERN_NO_ADMIN_IDENTITY', `no admin identity in ${dataDir}`, {
      hint: `Run this on the auth server, with the --data-dir that \`postern serve\` uses (start it first:  postern serve --data-dir ${dataDir})`,
    });
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as IdentityFile;
  } catch (err) {
    throw new PosternError('ERR_POSTERN_NO_ADMIN_IDENTITY', `cannot read the admin identity ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Runs `fn` with an AuthClient acting as the admin of the local cluster, then closes it. */
export async function withAdminClient<T>(dataDirFlag: string | undefined, deps: Deps, fn: (auth: AuthClient) => Promise<T>): Promise<T> {
  const identity = readAdminIdentity(dataDirFlag, deps);
  const client = remoteAuthClient(parseHostPort(identity.authAddr, 3025), identity);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

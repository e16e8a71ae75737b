/**
 * Every path Postern's client writes, in one place. The tree, under $TSH_HOME (default
 * ~/.tsh, the same place Teleport's tsh uses):
 *
 *   $TSH_HOME/
 *   ├── current-profile                  the name of the current proxy
 *   ├── <proxy>.yaml                     a profile: proxy addresses, cluster, user, TLS pin
 *   ├── ls-cache/<proxy>.json            node names from the last `postern ls` (completion)
 *   └── keys/
 *       └── <proxy>/                     0700
 *           ├── <user>                   the private key, OpenSSH format, 0600
 *           ├── <user>.pub               its public key
 *           ├── known_hosts              @cert-authority for the host CA, the proxy's host key
 *           └── <user>-ssh/
 *               └── <cluster>-cert.pub   the user certificate signed by the user CA
 *
 * <proxy> is the proxy's host name without the port, as in Teleport.
 */
import { join } from 'node:path';
import { ValidationError } from '../core/errors.ts';

/** Where the tree starts: $TSH_HOME, else ~/.tsh. */
export function tshHome(env: Record<string, string | undefined>, homeDir: string): string {
  return env.TSH_HOME && env.TSH_HOME.length > 0 ? env.TSH_HOME : join(homeDir, '.tsh');
}

function safe(part: string, what: string): string {
  if (!/^[A-Za-z0-9._:@[\]-]{1,253}$/.test(part) || part === '.' || part === '..') throw new ValidationError(`invalid ${what} "${part}"`);
  return part;
}

/** The paths of one profile (a proxy and a user). */
export interface ProfilePaths {
  home: string;
  profile: string;
  keyDir: string;
  privateKey: string;
  publicKey: string;
  certDir: string;
  certificate: string;
  knownHosts: string;
}

/** The file that names the current profile. */
export const currentProfilePath = (home: string): string => join(home, 'current-profile');

/** The profile file of a proxy. */
export const profilePath = (home: string, proxyHost: string): string => join(home, `${safe(proxyHost, 'proxy')}.yaml`);

/** The completion cache of a proxy. */
export const lsCachePath = (home: string, proxyHost: string): string => join(home, 'ls-cache', `${safe(proxyHost, 'proxy')}.json`);

/** Every path of a profile. */
export function profilePaths(home: string, proxyHost: string, user: string, cluster: string): ProfilePaths {
  const keyDir = join(home, 'keys', safe(proxyHost, 'proxy'));
  const u = safe(user, 'user name');
  const certDir = join(keyDir, `${u}-ssh`);
  return {
    home,
    profile: profilePath(home, proxyHost),
    keyDir,
    privateKey: join(keyDir, u),
    publicKey: join(keyDir, `${u}.pub`),
    certDir,
    certificate: join(certDir, `${safe(cluster, 'cluster name')}-cert.pub`),
    knownHosts: join(keyDir, 'known_hosts'),
  };
}

/** Profiles: what `login` remembers about a proxy, and which one is current. */
import { readFileSync, existsSync, rmSync } from 'node:fs';
import YAML from 'yaml';
import { writeFileAtomic, ensurePrivateDir } from '../core/fs.ts';
import { NotLoggedInError } from '../core/errors.ts';
import { currentProfilePath, profilePath, profilePaths } from './paths.ts';
import type { ProfilePaths } from './paths.ts';

/** A stored profile. */
export interface Profile {
  /** The proxy's web address, HOST:PORT. */
  webProxyAddr: string;
  /** The proxy's SSH address, HOST:PORT. */
  sshProxyAddr: string;
  proxyHost: string;
  cluster: string;
  user: string;
  logins: string[];
  /** The pin of the cluster's TLS CA, when the user gave one. */
  caPin?: string;
  insecure?: boolean;
}

/** Writes a profile and makes it current. */
export function saveProfile(home: string, p: Profile): void {
  ensurePrivateDir(home);
  writeFileAtomic(profilePath(home, p.proxyHost), YAML.stringify(p), 0o600);
  writeFileAtomic(currentProfilePath(home), p.proxyHost + '\n', 0o600);
}

/** The name of the current profile, if any. */
export function currentProfileName(home: string): string | undefined {
  const path = currentProfilePath(home);
  if (!existsSync(path)) return undefined;
  const name = readFileSync(path, 'utf8').trim();
  return name || undefined;
}

/** Reads a profile by proxy host, or the current one; NotLoggedInError when there is none. */
export function loadProfile(home: string, proxyHost?: string): { profile: Profile; paths: ProfilePaths } {
  const name = proxyHost ?? currentProfileName(home);
  if (!name) throw new NotLoggedInError('not logged in');
  const path = profilePath(home, name);
  if (!existsSync(path)) throw new NotLoggedInError(`not logged in to ${name}`);
  const profile = YAML.parse(readFileSync(path, 'utf8')) as Profile;
  return { profile, paths: profilePaths(home, profile.proxyHost, profile.user, profile.cluster) };
}

/** Removes a profile and its keys; clears current-profile when it named this one. */
export function removeProfile(home: string, p: Profile, paths: ProfilePaths): void {
  for (const f of [paths.privateKey, paths.publicKey, paths.certificate]) rmSync(f, { force: true });
  rmSync(paths.certDir, { recursive: true, force: true });
  rmSync(paths.knownHosts, { force: true });
  rmSync(paths.profile, { force: true });
  if (currentProfileName(home) === p.proxyHost) rmSync(currentProfilePath(home), { force: true });
}

/**
 * The login a profile holds (~/.tsh/keys/<proxy>/: the key pair and its certificate), read
 * for a command that presents it: the SSH connection to the proxy (proxy-conn.ts), the TLS
 * tunnel and the signed web API. Kept apart from proxy-conn.ts so that commands that only
 * sign web requests (`postern ls`) do not load ssh2.
 */
import type { SshKeyPair } from '../ssh/keys.ts';
import type { SshCertificate } from '../ssh/certs.ts';
import { CertificateExpiredError } from '../core/errors.ts';
import { escapeControl } from '../core/text.ts';
import { loadProfile } from './profile.ts';
import type { Profile } from './profile.ts';
import { readKeys } from './keystore.ts';
import type { ProfilePaths } from './paths.ts';

/** A stored login, ready to present to the proxy. */
export interface StoredLogin {
  profile: Profile;
  paths: ProfilePaths;
  keyPair: SshKeyPair;
  certificate: SshCertificate;
  /** The certificate as its `…-cert.pub` line. */
  certificateText: string;
}

/**
 * Reads the login of a profile (the current one without `proxyHost`). Throws
 * NotLoggedInError when there is none and CertificateExpiredError (exit 4, hint
 * `postern login`) when its certificate has expired at `now`.
 */
export function loadLogin(home: string, proxyHost?: string, now: Date = new Date()): StoredLogin {
  const { profile, paths } = loadProfile(home, proxyHost);
  const { keyPair, certificate, certificateText } = readKeys(paths);
  if (now.getTime() >= certificate.validBefore.getTime()) {
    throw new CertificateExpiredError(
      `the certificate of ${escapeControl(profile.user)} for ${escapeControl(profile.proxyHost)} expired at ${certificate.validBefore.toISOString()}`,
      { hint: `Log in again with:  postern login --proxy ${profile.webProxyAddr}` },
    );
  }
  return { profile, paths, keyPair, certificate, certificateText };
}

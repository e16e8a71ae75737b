/**
 * A proxy that runs alone (`postern serve --roles proxy`) reaches auth with an identity of
 * its own: a mutual-TLS client certificate it gets once by joining the cluster with a
 * token, trusting auth by the cluster CA's pin, and keeps in <data-dir>/proxy/identity.json
 * (src/core/server-paths.ts). Later starts read it; a pin given again must still match.
 * An identity is good for a year and one use of the token; at a start with less than
 * RENEW_BEFORE_MS of it left, the proxy renews it with a fresh key ({@link renewProxyIdentityIfDue}).
 */
import { existsSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { ConfigError } from '../core/errors.ts';
import { ensurePrivateDir, writeFileAtomic } from '../core/fs.ts';
import { serverPaths } from '../core/server-paths.ts';
import type { IdentityFile } from '../core/server-paths.ts';
import { formatHostPort } from '../core/text.ts';
import { newTlsKeyPair } from '../core/tls-keys.ts';
import { certificatePin } from '../core/tls-pin.ts';

/** The Auth API's join call: trusting auth by `pin`, trades a token and a public key for a certificate. */
export type JoinCall = (
  addr: { host: string; port: number }, pin: string, req: { token: string; name: string; publicKeyPem: string },
) => Promise<{ certPem: string; caPem: string; clusterName: string }>;

/** What the proxy knows about joining: from its flags or config file. */
export interface ProxyJoinOptions {
  dataDir: string;
  /** The proxy's name, as auth will know it. */
  name: string;
  authServer: { host: string; port: number };
  joinToken?: string | undefined;
  caPin?: string | undefined;
}

/**
 * The proxy's Auth API identity: read from its data dir, or made by joining with the
 * token (a fresh TLS key that never leaves this host) and stored 0600. A ConfigError says
 * what is missing or does not match.
 */
export async function proxyIdentity(opts: ProxyJoinOptions, join: JoinCall): Promise<IdentityFile> {
  const paths = serverPaths(opts.dataDir);
  ensurePrivateDir(paths.proxyDir);
  const path = paths.proxyIdentity;
  const server = opts.authServer;
  if (!existsSync(path)) {
    if (!opts.joinToken || !opts.caPin) {
      throw new ConfigError('this proxy has not joined the cluster yet: --join-token and --ca-pin are needed', {
        hint: 'On the auth server run:  postern tokens add --type proxy   and pass what it prints',
      });
    }
    const { keyPem, publicKeyPem } = newTlsKeyPair();
    const joined = await join(server, opts.caPin, { token: opts.joinToken, name: opts.name, publicKeyPem });
    const identity: IdentityFile = { authAddr: formatHostPort(server.host, server.port), clusterName: joined.clusterName, certPem: joined.certPem, keyPem, caPem: joined.caPem };
    writeFileAtomic(path, JSON.stringify(identity, null, 2) + '\n', 0o600);
  }
  const identity = JSON.parse(readFileSync(path, 'utf8')) as IdentityFile;
  if (opts.caPin && certificatePin(identity.caPem) !== opts.caPin) {
    throw new ConfigError('the proxy\'s stored identity is for a cluster CA other than --ca-pin', { hint: `Remove ${path} to join again` });
  }
  return identity;
}

/** A proxy renews its identity at start when less than this is left of it (30 days). */
export const RENEW_BEFORE_MS = 30 * 86_400_000;

/**
 * Renews the identity when it ends within `renewBeforeMs` of `now`: a fresh TLS key, a new
 * certificate from auth (`renew` is the renewProxyIdentity call made with the current
 * identity), stored 0600 in place of the old. Returns the identity to use and whether it is new.
 */
export async function renewProxyIdentityIfDue(
  dataDir: string, identity: IdentityFile, renew: (publicKeyPem: string) => Promise<{ certPem: string; caPem: string }>,
  now: Date, renewBeforeMs = RENEW_BEFORE_MS,
): Promise<{ identity: IdentityFile; renewed: boolean }> {
  const ends = new Date(new X509Certificate(identity.certPem).validTo).getTime();
  if (ends - now.getTime() > renewBeforeMs) return { identity, renewed: false };
  const { keyPem, publicKeyPem } = newTlsKeyPair();
  const issued = await renew(publicKeyPem);
  const next: IdentityFile = { ...identity, certPem: issued.certPem, caPem: issued.caPem, keyPem };
  writeFileAtomic(serverPaths(dataDir).proxyIdentity, JSON.stringify(next, null, 2) + '\n', 0o600);
  return { identity: next, renewed: true };
}

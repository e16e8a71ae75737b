/**
 * The key store: writes what a login brings back (key pair, certificate, known_hosts) and
 * reads it again. Directories 0700, private key 0600, every write atomic.
 */
import { readFileSync, existsSync } from 'node:fs';
import { ensurePrivateDir, writeFileAtomic } from '../core/fs.ts';
import { encodePrivateKeyOpenSSH, formatAuthorizedKey, parsePrivateKeyOpenSSH } from '../ssh/keys.ts';
import type { SshKeyPair } from '../ssh/keys.ts';
import { parseCertificate } from '../ssh/certs.ts';
import type { SshCertificate } from '../ssh/certs.ts';
import { formatCertAuthorityLine, formatKnownHostLine } from '../ssh/known-hosts.ts';
import { parseAuthorizedKey } from '../ssh/keys.ts';
import { NotLoggedInError } from '../core/errors.ts';
import { parseHostPort } from '../core/text.ts';
import type { ProfilePaths } from './paths.ts';

/** What to store after a login. */
export interface KeysToStore {
  keyPair: SshKeyPair;
  comment: string;
  certificate: string;
  hostCaKeys: string[];
  cluster: string;
  proxySshAddr: string;
  proxySshHostKey: string;
}

/** Writes keys, certificate and known_hosts for a profile. */
export function storeKeys(paths: ProfilePaths, k: KeysToStore): void {
  ensurePrivateDir(paths.home);
  ensurePrivateDir(`${paths.home}/keys`);
  ensurePrivateDir(paths.keyDir);
  ensurePrivateDir(paths.certDir);
  writeFileAtomic(paths.privateKey, encodePrivateKeyOpenSSH(k.keyPair, k.comment), 0o600);
  writeFileAtomic(paths.publicKey, formatAuthorizedKey(k.keyPair.publicWire, k.comment) + '\n', 0o644);
  writeFileAtomic(paths.certificate, k.certificate.trim() + '\n', 0o644);
  const lines: string[] = [];
  for (const ca of k.hostCaKeys) {
    // This known_hosts serves this cluster only (postern config points at it), so the host
    // CA is trusted for any name there; the certificate's principals still have to match.
    lines.push(formatCertAuthorityLine(['*'], parseAuthorizedKey(ca).wire, `postern host CA, cluster=${k.cluster}`));
  }
  const { host, port } = parseHostPort(k.proxySshAddr, 3023);
  lines.push(formatKnownHostLine(host, port, parseAuthorizedKey(k.proxySshHostKey).wire));
  writeFileAtomic(paths.knownHosts, lines.join('\n') + '\n', 0o644);
}

/** The stored key pair and certificate; NotLoggedInError when they are missing. */
export function readKeys(paths: ProfilePaths): { keyPair: SshKeyPair; certificate: SshCertificate; certificateText: string } {
  if (!existsSync(paths.privateKey) || !existsSync(paths.certificate)) {
    throw new NotLoggedInError('no key or certificate stored for this profile');
  }
  const certificateText = readFileSync(paths.certificate, 'utf8').trim();
  return {
    keyPair: parsePrivateKeyOpenSSH(readFileSync(paths.privateKey, 'utf8')),
    certificate: parseCertificate(certificateText),
    certificateText,
  };
}

/** The stored key pair and certificate whatever their validity, or undefined when they are missing or unreadable. */
export function readKeysAnyTime(paths: ProfilePaths): ReturnType<typeof readKeys> | undefined {
  try {
    return readKeys(paths);
  } catch {
    return undefined;
  }
}

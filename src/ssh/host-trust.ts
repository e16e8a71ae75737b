/**
 * How a node proves itself to whoever opens SSH to it (Postern's client, and the proxy in
 * recording mode or for the web terminal): a host certificate signed by the cluster's
 * host CA, of type host, valid now, naming the node as the user named it. A plain host key
 * is refused: there is nothing to check it against, and Postern never trusts on first use.
 */
import type { HostKeyAlgorithm } from './ssh2-certs.ts';
import { isCertAlgo } from './ssh2-certs.ts';
import { fingerprintSha256, wireKeyType } from './keys.ts';
import { parseCertificate, verifyCertificate } from './certs.ts';
import type { SshCertificate } from './certs.ts';
import { escapeControl } from '../core/text.ts';

/** Host key algorithms asked of a node: its certificate first, then the plain ones (to refuse them by name). */
export const NODE_HOST_KEY_ALGORITHMS: HostKeyAlgorithm[] = [
  'ssh-ed25519-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256-cert-v01@openssh.com', 'ecdsa-sha2-nistp384-cert-v01@openssh.com', 'ecdsa-sha2-nistp521-cert-v01@openssh.com',
  'rsa-sha2-512-cert-v01@openssh.com', 'rsa-sha2-256-cert-v01@openssh.com',
  'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256',
];

/** What a node's host key is checked against. */
export interface NodeTrust {
  /** The cluster's host CA keys (wire blobs). */
  hostCaKeys: Buffer[];
  /** The names the certificate may carry; one must be among its principals. */
  names: string[];
  now: Date;
}

/** The names a node's host certificate must carry one of: the target, and target.<cluster>. */
export function acceptedHostNames(target: string, cluster: string): string[] {
  const names = [target];
  const suffix = `.${cluster}`;
  if (cluster && !target.endsWith(suffix)) names.push(`${target}${suffix}`);
  return names;
}

/** Checks a node's host key or certificate (wire blob); undefined when trusted, else why not. */
export function checkNodeHostKey(key: Buffer, trust: NodeTrust): string | undefined {
  let type: string;
  try { type = wireKeyType(key); } catch { return 'it sent a host key that cannot be read'; }
  if (!isCertAlgo(type)) {
    return `it presented a plain host key (${escapeControl(type)} ${fingerprintSha256(key)}) and no host certificate of the cluster`;
  }
  if (trust.hostCaKeys.length === 0) return 'no host CA of the cluster is in known_hosts';
  let cert: SshCertificate;
  try { cert = parseCertificate(key); } catch (err) { return `its host certificate cannot be read: ${escapeControl((err as Error).message)}`; }
  try {
    verifyCertificate(cert, { caPublicKeys: trust.hostCaKeys, type: 'host', now: trust.now });
  } catch (err) {
    return `its host certificate is not valid: ${escapeControl((err as Error).message)}`;
  }
  if (!trust.names.some((n) => cert.principals.includes(n))) {
    const listed = cert.principals.length ? cert.principals.map(escapeControl).join(', ') : 'none';
    return `its host certificate is for ${listed}, not for ${trust.names.map((n) => `"${escapeControl(n)}"`).join(' or ')}`;
  }
  return undefined;
}

/**
 * Trusting a TLS peer by pin: the chain must contain a certificate whose SPKI has the pin,
 * and the leaf must be signed by it, be valid now, and (when asked) name the host we dialled. Used by
 * `postern login --ca-pin` and by a proxy joining auth.
 */
import { X509Certificate } from 'node:crypto';
import type { TLSSocket, PeerCertificate, DetailedPeerCertificate } from 'node:tls';
import { checkServerIdentity as tlsCheckServerIdentity } from 'node:tls';
import { certificatePin } from './tls-pin.ts';
import { TlsTrustError } from './errors.ts';


/** The peer's chain, leaf first, as X509Certificate objects. */
export function peerChain(socket: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let c = socket.getPeerCertificate(true) as DetailedPeerCertificate | undefined;
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    out.push(new X509Certificate(c.raw));
    c = c.issuerCertificate;
  }
  return out;
}

/** Returns an error when the connected peer does not match the pin, else undefined. */
export function checkPinnedPeer(socket: TLSSocket, pin: string, hostname: string | undefined, now = new Date()): TlsTrustError | undefined {
  const chain = peerChain(socket);
  const leaf = chain[0];
  if (!leaf) return new TlsTrustError('the server sent no certificate');
  const anchor = chain.find((c) => certificatePin(c) === pin);
  if (!anchor) return new TlsTrustError(`the server's certificate does not match the pin ${pin}`, { hint: 'Check the pin printed by `postern serve`; if the server was re-installed, get the new pin from its admin' });
  if (anchor !== leaf && !(leaf.checkIssued(anchor) && leaf.verify(anchor.publicKey))) {
    return new TlsTrustError('the server certificate is not signed by the pinned CA');
  }
  if (new Date(leaf.validFrom) > now || new Date(leaf.validTo) < now) return new TlsTrustError(`the server certificate is not valid now (valid ${leaf.validFrom} to ${leaf.validTo})`);
  if (anchor !== leaf && hostname !== undefined) {
    const hostErr = tlsCheckServerIdentity(hostname, socket.getPeerCertificate() as PeerCertificate);
    if (hostErr) return new TlsTrustError(`the server certificate is not for ${hostname}: ${hostErr.message.toLowerCase()}`);
  }
  return undefined;
}

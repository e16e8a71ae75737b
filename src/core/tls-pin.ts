/**
 * TLS certificate pins: `sha256:<hex>` of a certificate's SubjectPublicKeyInfo, the form
 * `postern serve` prints and `postern login --ca-pin` takes. A pin survives re-issuing
 * a certificate for the same key.
 */
import { X509Certificate, createHash } from 'node:crypto';

/** Computes the pin of a PEM or DER certificate. */
export function certificatePin(cert: string | Buffer | X509Certificate): string {
  const x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  const spki = x.publicKey.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}

/** True when the text has the shape of a pin. */
export function isPin(text: string): boolean {
  return /^sha256:[0-9a-f]{64}$/.test(text);
}

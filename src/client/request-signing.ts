/**
 * Signing web API requests with what `login` stored: the user certificate and its SSH key.
 * The proxy checks the certificate against the user CA and the signature with the key the
 * certificate names (src/proxy/cert-auth.ts), so `postern ls` needs no other credential.
 *
 *   Authorization: Postern-Cert cert=<base64 certificate blob>,ts=<unix ms>,nonce=<hex>,sig=<base64 SSH signature>
 *
 * The signature covers, joined with "\n": "postern-webapi-v1", the method, the path with
 * its query exactly as sent, ts and nonce. The proxy keeps the same format in cert-auth.ts
 * (it may not import client code); test/unit/client-request-signing.test.ts ties the two.
 */
import { randomBytes } from 'node:crypto';
import { signSsh } from '../ssh/keys.ts';
import type { SshKeyPair } from '../ssh/keys.ts';

/** The scheme name in the Authorization header. */
export const SIGNATURE_SCHEME = 'Postern-Cert';

/** The first line of every signed message: binds a signature to this use only. */
export const SIGNATURE_CONTEXT = 'postern-webapi-v1';

/** The bytes a request signature covers. */
export function signedRequestText(method: string, pathAndQuery: string, ts: number, nonce: string): string {
  return `${SIGNATURE_CONTEXT}\n${method.toUpperCase()}\n${pathAndQuery}\n${ts}\n${nonce}`;
}

/** What a signature needs. */
export interface SignRequestOptions {
  keyPair: SshKeyPair;
  /** The certificate's wire blob (SshCertificate.raw). */
  certificate: Buffer;
  method: string;
  /** The path and query string exactly as they go on the wire, e.g. `/webapi/nodes?labels=env%3Dprod`. */
  pathAndQuery: string;
  now?: Date;
  /** Fresh random by default; tests pass their own. */
  nonce?: string;
}

/** The Authorization header value for one request. */
export function signRequest(opts: SignRequestOptions): string {
  const ts = (opts.now ?? new Date()).getTime();
  const nonce = opts.nonce ?? randomBytes(16).toString('hex');
  const sig = signSsh(opts.keyPair.privateKey, Buffer.from(signedRequestText(opts.method, opts.pathAndQuery, ts, nonce), 'utf8'));
  return `${SIGNATURE_SCHEME} cert=${opts.certificate.toString('base64')},ts=${ts},nonce=${nonce},sig=${sig.toString('base64')}`;
}

/** Something that signs requests: given method and path+query, the header value. */
export type RequestSigner = (method: string, pathAndQuery: string) => string;

/** A signer bound to a stored key and certificate. */
export function requestSigner(keyPair: SshKeyPair, certificate: Buffer, now: () => Date = () => new Date()): RequestSigner {
  return (method, pathAndQuery) => signRequest({ keyPair, certificate, method, pathAndQuery, now: now() });
}

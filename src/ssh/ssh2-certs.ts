/**
 * Glue for OpenSSH certificates over `ssh2`, as patched by
 * `patches/ssh2+1.17.0+*.patch` (applied by patch-package at install; docs/ssh2-patches.md).
 *
 * The patch teaches ssh2 three things; this module types them and adds the
 * small parsing the app needs around them:
 *
 * - client: `Client.connect({ privateKey, certificate })`, or an `authHandler`
 *   entry `{ type: 'publickey', username, key, certificate }`, sends the
 *   certificate as the public key (`ssh-ed25519-cert-v01@openssh.com`) and
 *   signs with the private key; agent identities that are certificates work too.
 * - client: `algorithms.serverHostKey` may name certificate algorithms; the
 *   host certificate blob then reaches `hostVerifier(key)` and the KEX
 *   signature is checked against the key inside it.
 * - server: a certificate offered in publickey auth reaches the
 *   'authentication' handler as `ctx.key = { algo: <cert type>, data: <cert> }`
 *   with `ctx.signature` unwrapped as for plain keys; verify it with
 *   {@link verifyCertAuthSignature}. ssh2 never checks the certificate itself:
 *   the CA signature, principals and validity are the app's to check.
 * - server: a `hostKeys` entry `{ key, certificate }` ({@link certHostKey})
 *   presents an OpenSSH host certificate: the KEX offers the certificate
 *   algorithm (`ssh-ed25519-cert-v01@openssh.com`) ahead of the plain one,
 *   sends the certificate as K_S and signs under the plain algorithm name.
 * - server: `conn.openssh_authAgent(cb)` opens an `auth-agent@openssh.com`
 *   channel to the agent the client forwarded (see forwarded-agent.ts).
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import ssh2 from 'ssh2';
import type {
  Algorithms,
  AlgorithmList,
  Client,
  ConnectConfig,
  EncryptedPrivateKey,
  PublicKeyAuthMethod,
  ServerHostKeyAlgorithm,
} from 'ssh2';
import { CertificateError } from '../core/errors.ts';
import { parseCertificate } from './certs.ts';

/** Suffix of the OpenSSH certificate key types (PROTOCOL.certkeys). */
export const CERT_SUFFIX = '-cert-v01@openssh.com';

/** A host key algorithm name, plain or certificate. */
export type HostKeyAlgorithm = ServerHostKeyAlgorithm | `${ServerHostKeyAlgorithm}${typeof CERT_SUFFIX}`;

/** `ConnectConfig` with the options the ssh2 patch adds. */
export interface CertConnectConfig extends Omit<ConnectConfig, 'algorithms'> {
  /** OpenSSH certificate for `privateKey`: wire blob, or an authorized_keys line (`…-cert.pub`). */
  certificate?: Buffer | string;
  algorithms?: Omit<Algorithms, 'serverHostKey'> & {
    serverHostKey?: AlgorithmList<HostKeyAlgorithm>;
  };
}

/** An `authHandler` publickey entry that presents a certificate. */
export interface CertPublicKeyAuthMethod extends PublicKeyAuthMethod {
  /** OpenSSH certificate for `key`: wire blob, or an authorized_keys line. */
  certificate?: Buffer | string;
}

/**
 * True when the ssh2 in use carries the certificate patch (it parses a
 * certificate as one; stock ssh2 rejects the type). Works bundled too.
 */
export function ssh2HasCertificateSupport(): boolean {
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  const type = 'ssh-ed25519-cert-v01@openssh.com';
  // type, nonce, certified key: all ssh2 reads of a certificate to parse it
  const stub = Buffer.concat([str(Buffer.from(type)), str(Buffer.alloc(32)), str(Buffer.alloc(32))]);
  const parsed = ssh2.utils.parseKey(stub);
  return !(parsed instanceof Error) && !Array.isArray(parsed) && parsed.type === (type as string);
}

/** True when an SSH key algorithm name is an OpenSSH certificate type. */
export function isCertAlgo(algo: string): boolean {
  return algo.endsWith(CERT_SUFFIX);
}

/** The fields of an OpenSSH certificate that signature checks need. */
export interface CertificateKeys {
  /** Certificate type, e.g. `ssh-ed25519-cert-v01@openssh.com`. */
  type: string;
  /** The certified key, which signs for the certificate's holder. */
  publicKey: KeyObject;
  /** The CA's public key (SSH wire format) that signed the certificate. */
  signatureKey: Buffer;
  /** The bytes the CA signed: the certificate up to its signature. */
  signedData: Buffer;
  /** The CA's signature (SSH signature format). */
  signature: Buffer;
}

class Reader {
  pos = 0;
  readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  string(): Buffer {
    if (this.pos + 4 > this.buf.length) throw new Error('truncated certificate');
    const len = this.buf.readUInt32BE(this.pos);
    const start = this.pos + 4;
    if (start + len > this.buf.length) throw new Error('truncated certificate');
    this.pos = start + len;
    return this.buf.subarray(start, this.pos);
  }
  skip(bytes: number): void {
    if (this.pos + bytes > this.buf.length) throw new Error('truncated certificate');
    this.pos += bytes;
  }
}

const b64url = (b: Buffer): string => b.toString('base64url');
// mpint → unsigned big-endian for JWK
const unsigned = (b: Buffer): Buffer => (b[0] === 0 ? b.subarray(1) : b);
const CURVES: Record<string, { crv: string; hash: string }> = {
  nistp256: { crv: 'P-256', hash: 'sha256' },
  nistp384: { crv: 'P-384', hash: 'sha384' },
  nistp521: { crv: 'P-521', hash: 'sha512' },
};

/**
 * Reads the certified key, CA key and CA signature of an OpenSSH certificate
 * given as a wire blob or an authorized_keys line. Ed25519, ECDSA and RSA.
 * Validity, principals and options are left to the certificate module.
 */
export function parseCertificateKeys(cert: Buffer | string): CertificateKeys {
  // A wire blob starts with a uint32 length; a `…-cert.pub` line with its type
  const blob = Buffer.isBuffer(cert) && cert[0] === 0
    ? cert
    : Buffer.from(String(cert).trim().split(/\s+/)[1] ?? '', 'base64');
  const r = new Reader(blob);
  const type = r.string().toString('latin1');
  if (!isCertAlgo(type)) throw new Error(`not an OpenSSH certificate: ${type}`);
  r.string(); // nonce
  let publicKey: KeyObject;
  if (type.startsWith('ssh-ed25519')) {
    publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(r.string()) }, format: 'jwk' });
  } else if (type.startsWith('ecdsa-sha2-')) {
    const curve = CURVES[r.string().toString('latin1')];
    const q = r.string();
    if (!curve || q[0] !== 4) throw new Error('unsupported ECDSA certificate key');
    const n = (q.length - 1) / 2;
    publicKey = createPublicKey({
      key: { kty: 'EC', crv: curve.crv, x: b64url(q.subarray(1, 1 + n)), y: b64url(q.subarray(1 + n)) },
      format: 'jwk',
    });
  } else if (type.startsWith('ssh-rsa')) {
    const e = unsigned(r.string());
    const n = unsigned(r.string());
    publicKey = createPublicKey({ key: { kty: 'RSA', n: b64url(n), e: b64url(e) }, format: 'jwk' });
  } else {
    throw new Error(`unsupported certificate type: ${type}`);
  }
  r.skip(8 + 4); // serial, certificate type
  r.string(); // key id
  r.string(); // valid principals
  r.skip(8 + 8); // valid after, valid before
  r.string(); // critical options
  r.string(); // extensions
  r.string(); // reserved
  const signatureKey = r.string();
  const signedData = blob.subarray(0, r.pos);
  const signature = r.string();
  if (r.pos !== blob.length) throw new Error('trailing data after certificate');
  return { type, publicKey, signatureKey, signedData, signature };
}

/** What an ssh2 'authentication' handler gets for a signed publickey request. */
export interface SignedPublicKeyAuth {
  key: { algo: string; data: Buffer };
  signature?: Buffer;
  blob?: Buffer;
  hashAlgo?: string;
}

/**
 * Checks the signature of a publickey auth request made with a certificate:
 * the patched ssh2 hands over `ctx.signature` unwrapped (raw Ed25519, DER
 * ECDSA, raw RSA) and `ctx.blob`, the signed bytes. Proves possession of the
 * certified key only; the caller still checks the certificate against its CA.
 * RSA signatures with SHA-1 (`ssh-rsa`) are refused, as OpenSSH 8.8+ does.
 */
export function verifyCertAuthSignature(ctx: SignedPublicKeyAuth): boolean {
  if (!ctx.signature || !ctx.blob || !isCertAlgo(ctx.key.algo)) return false;
  try {
    const { type, publicKey } = parseCertificateKeys(ctx.key.data);
    if (type !== ctx.key.algo) return false;
    let hash: string | null = null;
    if (type.startsWith('ecdsa-sha2-')) hash = CURVES[type.slice(11, 19)].hash;
    else if (type.startsWith('ssh-rsa')) hash = ctx.hashAlgo ?? null;
    if (type.startsWith('ssh-rsa') && hash !== 'sha256' && hash !== 'sha512') return false;
    return verify(hash, ctx.blob, publicKey, ctx.signature);
  } catch {
    return false; // malformed certificate or signature
  }
}

/**
 * Connects an ssh2 `Client` with the patch's options typed; resolves once
 * authenticated, rejects on the first error (bad certificate, auth failure,
 * host denied by `hostVerifier`).
 */
export function connectWithCertificate(client: Client, config: CertConnectConfig): Promise<Client> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      client.off('ready', onReady);
      reject(err);
    };
    const onReady = (): void => {
      client.off('error', onError);
      resolve(client);
    };
    client.once('ready', onReady).once('error', onError);
    client.connect(config as ConnectConfig);
  });
}

/** A `hostKeys` entry of ssh2's `Server` that presents the key with its OpenSSH host certificate. */
export interface CertHostKey extends EncryptedPrivateKey {
  /** The host certificate of `key`: wire blob, or the `…-cert.pub` line. */
  certificate: Buffer | string;
}

/**
 * A `Server({ hostKeys })` entry presenting `privateKey` with its host
 * certificate, as sshd's `HostKey` + `HostCertificate` do: clients that ask
 * for the certificate algorithm get the certificate, others the plain key.
 * Checks here what OpenSSH clients would refuse later: a user certificate, or
 * a certificate of another key. Validity and principals are the caller's.
 */
export function certHostKey(privateKey: Buffer | string, certificate: Buffer | string, passphrase?: string): CertHostKey {
  // A `…-cert.pub` file read as a Buffer is text; a wire blob starts with a length
  const text = Buffer.isBuffer(certificate) && certificate[0] !== 0 ? certificate.toString('utf8') : certificate;
  const cert = parseCertificate(text);
  if (cert.type !== 'host') {
    throw new CertificateError('ERR_POSTERN_CERT_WRONG_TYPE', `a ${cert.type} certificate cannot be presented as a host certificate`);
  }
  const key = ssh2.utils.parseKey(privateKey, passphrase);
  const parsed = Array.isArray(key) ? key[0] : key;
  if (parsed instanceof Error || !parsed?.isPrivateKey()) {
    throw new CertificateError('ERR_POSTERN_KEY_INVALID', 'host key is not a private key ssh2 can read', parsed instanceof Error ? { cause: parsed } : {});
  }
  if (!parsed.getPublicSSH().equals(cert.subjectPublicKey)) {
    throw new CertificateError('ERR_POSTERN_CERT_KEY_MISMATCH', 'the host certificate is not for this host key');
  }
  return { key: privateKey, certificate: cert.raw, ...(passphrase === undefined ? {} : { passphrase }) };
}

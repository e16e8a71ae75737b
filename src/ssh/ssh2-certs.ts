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
import { verify, type KeyObject } from 'node:crypto';
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
import { certificateSignedBytes, parseCertificate } from './certs.ts';
import type { SshCertificate } from './certs.ts';
import { CERT_SUFFIX, ecdsaHash, encodePrivateKeyOpenSSH, publicKeyFromWire } from './keys.ts';
import type { SshKeyPair } from './keys.ts';

/** Suffix of the OpenSSH certificate key types (PROTOCOL.certkeys); the one in keys.ts. */
export { CERT_SUFFIX };

/** A host key algorithm name, plain or certificate. */
export type HostKeyAlgorithm = ServerHostKeyAlgorithm | `${ServerHostKeyAlgorithm}${typeof CERT_SUFFIX}`;

/**
 * `ConnectConfig` with the options the ssh2 patch adds. Postern's own parsed forms (a key
 * pair, a certificate) are accepted and turned into ssh2's by connectWithCertificate.
 */
export interface CertConnectConfig extends Omit<ConnectConfig, 'algorithms' | 'privateKey'> {
  privateKey?: ConnectConfig['privateKey'] | SshKeyPair;
  /** OpenSSH certificate for `privateKey`: parsed, wire blob, or an authorized_keys line (`…-cert.pub`). */
  certificate?: Buffer | string | SshCertificate;
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

/**
 * A certificate as ssh2 hands it over or a caller holds it: a wire blob (starts with a
 * uint32 length, so a zero byte), an authorized_keys line, or a `…-cert.pub` file read
 * as a Buffer (text).
 */
function readCertificate(cert: Buffer | string | SshCertificate): SshCertificate {
  if (typeof cert !== 'string' && !Buffer.isBuffer(cert)) return cert;
  if (Buffer.isBuffer(cert) && cert[0] === 0) return parseCertificate(cert);
  return parseCertificate(String(cert).trim());
}

/**
 * Reads the certified key, CA key and CA signature of an OpenSSH certificate
 * given as a wire blob or an authorized_keys line. Ed25519, ECDSA and RSA.
 * Validity, principals and options are left to the certificate module.
 */
export function parseCertificateKeys(cert: Buffer | string): CertificateKeys {
  const parsed = readCertificate(cert);
  return {
    type: parsed.certType,
    publicKey: publicKeyFromWire(parsed.subjectPublicKey),
    signatureKey: parsed.signatureKey,
    signedData: certificateSignedBytes(parsed),
    signature: parsed.signature,
  };
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
    let hash: string | null = ecdsaHash(type.slice(0, -CERT_SUFFIX.length)) ?? null;
    if (type.startsWith('ssh-rsa')) hash = ctx.hashAlgo ?? null;
    if (type.startsWith('ssh-rsa') && hash !== 'sha256' && hash !== 'sha512') return false;
    return verify(hash, ctx.blob, publicKey, ctx.signature);
  } catch {
    return false; // malformed certificate or signature
  }
}

function isKeyPair(key: unknown): key is SshKeyPair {
  return typeof key === 'object' && key !== null && 'privateKey' in key && 'publicWire' in key;
}

function isCertificate(cert: unknown): cert is SshCertificate {
  return typeof cert === 'object' && cert !== null && !Buffer.isBuffer(cert) && 'raw' in cert;
}

// The ssh2 boundary: Postern's parsed key pair and certificate become the PEM and wire blob ssh2 reads.
function toSsh2Config(config: CertConnectConfig): ConnectConfig {
  const { privateKey, certificate, ...rest } = config;
  return {
    ...rest,
    ...(privateKey === undefined ? {} : { privateKey: isKeyPair(privateKey) ? ssh2PrivateKey(privateKey) : privateKey }),
    ...(certificate === undefined ? {} : { certificate: isCertificate(certificate) ? certificate.raw : certificate }),
  } as ConnectConfig;
}

/**
 * An `authHandler` publickey entry that presents `certificate` for `keyPair` as `username`,
 * made from Postern's parsed forms.
 */
export function certAuthMethod(username: string, keyPair: SshKeyPair, certificate: SshCertificate | Buffer | string): CertPublicKeyAuthMethod {
  return { type: 'publickey', username, key: ssh2PrivateKey(keyPair), certificate: isCertificate(certificate) ? certificate.raw : certificate };
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
    client.connect(toSsh2Config(config));
  });
}

/** A `hostKeys` entry of ssh2's `Server` that presents the key with its OpenSSH host certificate. */
export interface CertHostKey extends EncryptedPrivateKey {
  /** The host certificate of `key`: wire blob, or the `…-cert.pub` line. */
  certificate: Buffer | string;
}

const pemCache = new WeakMap<SshKeyPair, string>();

/**
 * A key pair as ssh2 reads a private key (the OpenSSH PEM): the one place Postern's
 * parsed keys turn into ssh2's form, made once per key pair.
 */
export function ssh2PrivateKey(keyPair: SshKeyPair): string {
  let pem = pemCache.get(keyPair);
  if (pem === undefined) {
    pem = encodePrivateKeyOpenSSH(keyPair);
    pemCache.set(keyPair, pem);
  }
  return pem;
}

/**
 * A `Server({ hostKeys })` entry presenting `privateKey` with its host
 * certificate, as sshd's `HostKey` + `HostCertificate` do: clients that ask
 * for the certificate algorithm get the certificate, others the plain key.
 * Checks here what OpenSSH clients would refuse later: a user certificate, or
 * a certificate of another key. Validity and principals are the caller's.
 * Postern passes its parsed key pair and certificate; files (PEM, `…-cert.pub`) work too.
 */
export function certHostKey(
  privateKey: SshKeyPair | Buffer | string, certificate: SshCertificate | Buffer | string, passphrase?: string,
): CertHostKey {
  const cert = readCertificate(certificate);
  if (cert.type !== 'host') {
    throw new CertificateError('ERR_POSTERN_CERT_WRONG_TYPE', `a ${cert.type} certificate cannot be presented as a host certificate`);
  }
  let publicWire: Buffer;
  let key: Buffer | string;
  if (typeof privateKey === 'string' || Buffer.isBuffer(privateKey)) {
    const parsedKey = ssh2.utils.parseKey(privateKey, passphrase);
    const parsed = Array.isArray(parsedKey) ? parsedKey[0] : parsedKey;
    if (parsed instanceof Error || !parsed?.isPrivateKey()) {
      throw new CertificateError('ERR_POSTERN_KEY_INVALID', 'host key is not a private key ssh2 can read', parsed instanceof Error ? { cause: parsed } : {});
    }
    publicWire = parsed.getPublicSSH();
    key = privateKey;
  } else {
    publicWire = privateKey.publicWire;
    key = ssh2PrivateKey(privateKey);
  }
  if (!publicWire.equals(cert.subjectPublicKey)) {
    throw new CertificateError('ERR_POSTERN_CERT_KEY_MISMATCH', 'the host certificate is not for this host key');
  }
  return { key, certificate: cert.raw, ...(passphrase === undefined ? {} : { passphrase }) };
}

/**
 * OpenSSH public and private keys: the SSH wire blob of RFC 4253 / RFC 5656 / RFC 8709,
 * the authorized_keys line, the "openssh-key-v1" private key file (PROTOCOL.key),
 * SHA256 fingerprints, and SSH signatures. Postern's own keys are ed25519; ecdsa and rsa
 * public keys are read and verified because users and hosts bring them.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import { CertificateError } from '../core/errors.ts';
import { SshFormatError, SshReader, SshWriter } from './wire.ts';

/** An ed25519 key pair with its public key already in SSH wire form. */
export interface SshKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public key as an SSH wire blob (string "ssh-ed25519", string A). */
  publicWire: Buffer;
}

/** An authorized_keys-style line taken apart. */
export interface AuthorizedKey {
  /** The key type as written, e.g. "ssh-ed25519" or "ssh-ed25519-cert-v01@openssh.com". */
  type: string;
  wire: Buffer;
  comment: string;
}

/** The plain public key types Postern reads. */
export const PUBLIC_KEY_TYPES = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'] as const;

/** Suffix of the OpenSSH certificate key types (PROTOCOL.certkeys). */
export const CERT_SUFFIX = '-cert-v01@openssh.com';

interface Curve {
  jwk: 'P-256' | 'P-384' | 'P-521';
  hash: 'sha256' | 'sha384' | 'sha512';
  size: number;
}

const CURVES: Record<string, Curve> = {
  nistp256: { jwk: 'P-256', hash: 'sha256', size: 32 },
  nistp384: { jwk: 'P-384', hash: 'sha384', size: 48 },
  nistp521: { jwk: 'P-521', hash: 'sha512', size: 66 },
};

/** The hash an ECDSA key type signs with ("sha256" for "ecdsa-sha2-nistp256"), or undefined for another type. */
export function ecdsaHash(keyType: string): 'sha256' | 'sha384' | 'sha512' | undefined {
  return keyType.startsWith('ecdsa-sha2-') ? CURVES[keyType.slice('ecdsa-sha2-'.length)]?.hash : undefined;
}

function keyError(message: string, cause?: unknown): CertificateError {
  return new CertificateError('ERR_POSTERN_KEY_INVALID', message, cause === undefined ? {} : { cause });
}

function unsupported(type: string): CertificateError {
  return new CertificateError('ERR_POSTERN_KEY_UNSUPPORTED', `unsupported key type "${type}"`, {
    hint: 'Use an ed25519, ecdsa (nistp256/384/521) or rsa key',
  });
}

/** True for a plain public key type Postern reads (not a certificate type). */
export function isPublicKeyType(type: string): boolean {
  return (PUBLIC_KEY_TYPES as readonly string[]).includes(type);
}

/** The plain key type a certificate type wraps ("ssh-ed25519" for "ssh-ed25519-cert-v01@openssh.com"), or undefined. */
export function certBaseType(type: string): string | undefined {
  if (!type.endsWith(CERT_SUFFIX)) return undefined;
  const base = type.slice(0, -CERT_SUFFIX.length);
  return isPublicKeyType(base) ? base : undefined;
}

/** The certificate type that wraps a plain key type. */
export function certTypeFor(keyType: string): string {
  if (!isPublicKeyType(keyType)) throw unsupported(keyType);
  return `${keyType}${CERT_SUFFIX}`;
}

/** The type name at the start of a wire blob. */
export function wireKeyType(wire: Uint8Array): string {
  return new SshReader(wire, 'public key').string();
}

/**
 * Reads the key fields that follow the type name for `type` (a plain key type) and
 * returns their raw bytes; certificates embed the same fields after the nonce.
 */
export function readKeyFields(reader: SshReader, type: string): Buffer {
  const start = reader.offset;
  if (type === 'ssh-ed25519') {
    const a = reader.bytes();
    if (a.length !== 32) throw keyError(`ed25519 public key has ${a.length} bytes, not 32`);
  } else if (type.startsWith('ecdsa-sha2-')) {
    const curve = reader.string();
    if (`ecdsa-sha2-${curve}` !== type) throw keyError(`ecdsa key of type ${type} names curve "${curve}"`);
    reader.bytes();
  } else if (type === 'ssh-rsa') {
    reader.mpintUnsigned();
    reader.mpintUnsigned();
  } else {
    throw unsupported(type);
  }
  return reader.since(start);
}

/** Encodes a Node public KeyObject (ed25519, ecdsa P-256/384/521, rsa) as an SSH wire blob. */
export function publicKeyToWire(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  const w = new SshWriter();
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    return w.string('ssh-ed25519').string(b64u(jwk.x)).toBuffer();
  }
  if (jwk.kty === 'EC') {
    const name = Object.keys(CURVES).find((n) => CURVES[n].jwk === jwk.crv);
    if (!name) throw unsupported(`ecdsa ${String(jwk.crv)}`);
    const point = Buffer.concat([Buffer.of(4), b64u(jwk.x), b64u(jwk.y)]);
    return w.string(`ecdsa-sha2-${name}`).string(name).string(point).toBuffer();
  }
  if (jwk.kty === 'RSA') return w.string('ssh-rsa').mpint(b64u(jwk.e)).mpint(b64u(jwk.n)).toBuffer();
  throw unsupported(String(key.asymmetricKeyType));
}

function b64u(value: string | undefined): Buffer {
  if (typeof value !== 'string') throw keyError('key is missing a field');
  return Buffer.from(value, 'base64url');
}

/** Makes a fresh ed25519 key pair. */
export function generateKeyPair(): SshKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, publicWire: publicKeyToWire(publicKey) };
}

/** Formats a wire blob as one authorized_keys line: "ssh-ed25519 AAAA… comment". */
export function formatAuthorizedKey(wire: Buffer, comment?: string): string {
  const type = wireKeyType(wire);
  if (/[\r\n]/.test(comment ?? '')) throw keyError('a key comment cannot contain a line break');
  return comment ? `${type} ${wire.toString('base64')} ${comment}` : `${type} ${wire.toString('base64')}`;
}

/** Parses "type base64 [comment]" for the plain and certificate types Postern reads. */
export function parseAuthorizedKey(line: string): AuthorizedKey {
  const m = /^\s*(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*?))?\s*$/.exec(line);
  if (!m) throw keyError('not a public key line: expected "TYPE BASE64 [COMMENT]"');
  const [, type, b64, comment = ''] = m;
  if (!isPublicKeyType(type) && !certBaseType(type)) throw unsupported(type);
  const wire = Buffer.from(b64, 'base64');
  let inner: string;
  try {
    inner = wireKeyType(wire);
  } catch (err) {
    throw keyError(`the ${type} key data is not an ssh key`, err);
  }
  if (inner !== type) throw keyError(`key line says ${type} but its data holds ${inner}`);
  // Check that the blob is whole, so a bad line fails here rather than later.
  if (isPublicKeyType(type)) publicKeyFromWire(wire);
  return { type, wire, comment };
}

/**
 * Turns a wire blob into a Node KeyObject for verification. For a certificate blob it
 * returns the certified (subject) key.
 */
export function publicKeyFromWire(wire: Uint8Array): KeyObject {
  const r = new SshReader(wire, 'public key');
  let type: string;
  try {
    type = r.string();
    const base = certBaseType(type);
    if (base) {
      r.bytes(); // nonce
      type = base;
    }
    const key = keyObjectFromFields(r, type);
    if (!base) r.done();
    return key;
  } catch (err) {
    if (err instanceof SshFormatError) throw keyError(`public key is malformed: ${err.message}`, err);
    throw err;
  }
}

function keyObjectFromFields(r: SshReader, type: string): KeyObject {
  let jwk: JsonWebKey;
  if (type === 'ssh-ed25519') {
    const a = r.bytes();
    if (a.length !== 32) throw keyError(`ed25519 public key has ${a.length} bytes, not 32`);
    jwk = { kty: 'OKP', crv: 'Ed25519', x: a.toString('base64url') };
  } else if (type.startsWith('ecdsa-sha2-')) {
    const name = r.string();
    const curve = CURVES[name];
    if (!curve || `ecdsa-sha2-${name}` !== type) throw unsupported(type);
    const q = r.bytes();
    if (q.length !== 1 + 2 * curve.size || q[0] !== 4) throw keyError(`ecdsa ${name} point is not an uncompressed point`);
    const x = q.subarray(1, 1 + curve.size).toString('base64url');
    const y = q.subarray(1 + curve.size).toString('base64url');
    jwk = { kty: 'EC', crv: curve.jwk, x, y };
  } else if (type === 'ssh-rsa') {
    const e = r.mpintUnsigned();
    const n = r.mpintUnsigned();
    jwk = { kty: 'RSA', e: e.toString('base64url'), n: n.toString('base64url') };
  } else {
    throw unsupported(type);
  }
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (err) {
    throw keyError(`${type} public key is not a valid key`, err);
  }
}

/** The plain public key inside a wire blob: the blob itself, or a certificate's subject key. */
export function plainKeyWire(wire: Uint8Array): Buffer {
  const r = new SshReader(wire, 'public key');
  const base = certBaseType(r.string());
  if (!base) return Buffer.from(wire);
  r.bytes(); // nonce
  return new SshWriter().string(base).raw(readKeyFields(r, base)).toBuffer();
}

/**
 * "SHA256:…" of a wire blob, exactly as `ssh-keygen -l` prints it (base64, no padding).
 * A certificate has its key's fingerprint, as in OpenSSH.
 */
export function fingerprintSha256(wire: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(plainKeyWire(wire)).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Signs data with a private key and returns the SSH signature blob (string algorithm,
 * string signature): ssh-ed25519, ecdsa-sha2-* (mpint r, mpint s) or rsa-sha2-512.
 */
export function signSsh(privateKey: KeyObject, data: Uint8Array): Buffer {
  const w = new SshWriter();
  const type = privateKey.asymmetricKeyType;
  if (type === 'ed25519') return w.string('ssh-ed25519').string(sign(null, data, privateKey)).toBuffer();
  if (type === 'ec') {
    const pubWire = publicKeyToWire(createPublicKey(privateKey));
    const algo = wireKeyType(pubWire);
    const curve = CURVES[algo.slice('ecdsa-sha2-'.length)];
    const rs = sign(curve.hash, data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const inner = new SshWriter().mpint(rs.subarray(0, curve.size)).mpint(rs.subarray(curve.size)).toBuffer();
    return w.string(algo).string(inner).toBuffer();
  }
  if (type === 'rsa') return w.string('rsa-sha2-512').string(sign('sha512', data, privateKey)).toBuffer();
  throw unsupported(String(type));
}

/**
 * Checks an SSH signature blob over data against a public key wire blob (or a
 * certificate blob, whose subject key is used). False for a wrong or malformed signature.
 */
export function verifySsh(publicWire: Uint8Array, data: Uint8Array, sigBlob: Uint8Array): boolean {
  const key = publicKeyFromWire(publicWire);
  let keyType = wireKeyType(publicWire);
  keyType = certBaseType(keyType) ?? keyType;
  try {
    const r = new SshReader(sigBlob, 'signature');
    const algo = r.string();
    const sig = r.bytes();
    r.done();
    if (keyType === 'ssh-ed25519') return algo === 'ssh-ed25519' && sig.length === 64 && verify(null, data, key, sig);
    if (keyType === 'ssh-rsa') {
      // SHA-1 "ssh-rsa" signatures are refused, as OpenSSH does by default since 8.8.
      const hash = algo === 'rsa-sha2-256' ? 'sha256' : algo === 'rsa-sha2-512' ? 'sha512' : undefined;
      return hash !== undefined && verify(hash, data, key, sig);
    }
    if (algo !== keyType) return false;
    const curve = CURVES[keyType.slice('ecdsa-sha2-'.length)];
    const inner = new SshReader(sig, 'ecdsa signature');
    const rInt = inner.mpintUnsigned();
    const sInt = inner.mpintUnsigned();
    inner.done();
    if (rInt.length > curve.size || sInt.length > curve.size) return false;
    const p1363 = Buffer.concat([pad(rInt, curve.size), pad(sInt, curve.size)]);
    return verify(curve.hash, data, { key, dsaEncoding: 'ieee-p1363' }, p1363);
  } catch (err) {
    if (err instanceof SshFormatError) return false;
    throw err;
  }
}

function pad(bytes: Buffer, size: number): Buffer {
  return Buffer.concat([Buffer.alloc(size - bytes.length), bytes]);
}

const PEM_BEGIN = '-----BEGIN OPENSSH PRIVATE KEY-----';
const PEM_END = '-----END OPENSSH PRIVATE KEY-----';
const MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');

/**
 * Encodes an ed25519 key pair as the unencrypted OpenSSH private key file
 * ("openssh-key-v1", cipher none) that `ssh` and `ssh-keygen` read.
 */
export function encodePrivateKeyOpenSSH(keyPair: SshKeyPair, comment = ''): string {
  const jwk = keyPair.privateKey.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') throw unsupported(String(keyPair.privateKey.asymmetricKeyType));
  const seed = b64u(jwk.d);
  const pub = b64u(jwk.x);
  const check = randomBytes(4).readUInt32BE(0);
  const inner = new SshWriter()
    .uint32(check)
    .uint32(check)
    .string('ssh-ed25519')
    .string(pub)
    .string(Buffer.concat([seed, pub])) // OpenSSH stores k || A
    .string(comment);
  // Pad to the cipher block size (8 for "none") with the bytes 1, 2, 3, …
  const length = inner.toBuffer().length;
  for (let i = 1; (length + i - 1) % 8 !== 0; i++) inner.byte(i);
  const body = new SshWriter()
    .raw(MAGIC)
    .string('none')
    .string('none')
    .string('')
    .uint32(1)
    .string(publicKeyToWire(keyPair.publicKey))
    .string(inner.toBuffer())
    .toBuffer();
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  return `${PEM_BEGIN}\n${b64}${PEM_END}\n`;
}

/** Reads an unencrypted ed25519 OpenSSH private key file into a key pair. */
export function parsePrivateKeyOpenSSH(pem: string): SshKeyPair {
  const begin = pem.indexOf(PEM_BEGIN);
  const end = pem.indexOf(PEM_END);
  if (begin < 0 || end < begin) throw keyError('not an openssh private key: the "BEGIN OPENSSH PRIVATE KEY" block is missing');
  const body = Buffer.from(pem.slice(begin + PEM_BEGIN.length, end).replace(/\s+/g, ''), 'base64');
  try {
    if (!body.subarray(0, MAGIC.length).equals(MAGIC)) throw keyError('not an openssh private key: bad magic');
    const r = new SshReader(body.subarray(MAGIC.length), 'private key');
    const cipher = r.string();
    const kdf = r.string();
    r.bytes();
    if (cipher !== 'none' || kdf !== 'none') {
      throw new CertificateError('ERR_POSTERN_KEY_ENCRYPTED', `the private key is encrypted (${cipher}, ${kdf})`, {
        hint: 'Remove the passphrase with:  ssh-keygen -p -N "" -f KEYFILE',
      });
    }
    if (r.uint32() !== 1) throw keyError('private key file must hold exactly one key');
    const publicWire = Buffer.from(r.bytes());
    const inner = new SshReader(r.bytes(), 'private key');
    r.done();
    if (inner.uint32() !== inner.uint32()) throw keyError('private key check bytes do not match');
    const type = inner.string();
    if (type !== 'ssh-ed25519') throw unsupported(type);
    const pub = inner.bytes();
    const secret = inner.bytes();
    inner.string(); // comment
    const padding = inner.rest();
    if (!padding.every((b, i) => b === i + 1)) throw keyError('private key padding is wrong');
    if (pub.length !== 32 || secret.length !== 64 || !secret.subarray(32).equals(pub)) throw keyError('ed25519 private key fields are malformed');
    const privateKey = createPrivateKey({
      key: { kty: 'OKP', crv: 'Ed25519', d: secret.subarray(0, 32).toString('base64url'), x: pub.toString('base64url') },
      format: 'jwk',
    });
    const publicKey = createPublicKey(privateKey);
    const derived = publicKeyToWire(publicKey);
    if (!derived.equals(publicWire)) throw keyError('private key does not match its public key');
    return { privateKey, publicKey, publicWire: derived };
  } catch (err) {
    if (err instanceof SshFormatError) throw keyError(`private key is malformed: ${err.message}`, err);
    throw err;
  }
}

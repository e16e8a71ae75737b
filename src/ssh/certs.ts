/**
 * OpenSSH certificates (PROTOCOL.certkeys): signing by a Postern CA, parsing, printing
 * and verification. Validity is always derived from a TTL at signing time, as Teleport's
 * lib/sshca does: the caller never sets the window itself.
 */
import { randomBytes } from 'node:crypto';
import { CertificateError, ValidationError } from '../core/errors.ts';
import { escapeControl } from '../core/text.ts';
import {
  certBaseType, certTypeFor, fingerprintSha256, isPublicKeyType, parseAuthorizedKey, publicKeyFromWire, readKeyFields,
  signSsh, verifySsh, wireKeyType,
} from './keys.ts';
import type { SshKeyPair } from './keys.ts';
import { SshFormatError, SshReader, SshWriter } from './wire.ts';

/** Which side of a connection a certificate vouches for. */
export type CertType = 'user' | 'host';

/** What to put in a certificate; checked on entry by `signCertificate`. */
export interface CertificateRequest {
  type: CertType;
  /** The subject's public key as a wire blob (ed25519, ecdsa or rsa). */
  subjectPublicKey: Buffer;
  keyId: string;
  principals: string[];
  /** How long the certificate lives from `now`; must be positive. */
  ttlMs: number;
  now?: Date;
  serial: bigint;
  criticalOptions?: Record<string, string>;
  /** Defaults, for user certificates, to the five `permit-*` extensions ssh-keygen grants. */
  extensions?: Record<string, string>;
}

/** A parsed OpenSSH certificate, with the wire blob it came from. */
export interface SshCertificate {
  /** "user" or "host". */
  type: CertType;
  /** The certificate key type, e.g. "ssh-ed25519-cert-v01@openssh.com". */
  certType: string;
  /** The subject's plain key type, e.g. "ssh-ed25519". */
  keyType: string;
  nonce: Buffer;
  /** The certified key as a plain wire blob. */
  subjectPublicKey: Buffer;
  serial: bigint;
  keyId: string;
  principals: string[];
  validAfter: Date;
  validBefore: Date;
  /** The raw validity bounds in seconds (0 and 2^64-1 mean "always" and "forever"). */
  validAfterSeconds: bigint;
  validBeforeSeconds: bigint;
  criticalOptions: Record<string, string>;
  extensions: Record<string, string>;
  /** The CA's public key as a wire blob. */
  signatureKey: Buffer;
  /** The CA's SSH signature blob. */
  signature: Buffer;
  /** The whole certificate wire blob. */
  raw: Buffer;
}

/** What `verifyCertificate` checks against. */
export interface VerifyCertificateOptions {
  /** Wire blobs of the CA keys that are trusted. */
  caPublicKeys: Buffer[];
  now?: Date;
  type?: CertType;
  principal?: string;
}

/** The clock skew a new certificate allows for: it is valid from one minute before now. */
export const CLOCK_SKEW_MS = 60_000;

/** The extensions ssh-keygen grants a user certificate by default. */
export const DEFAULT_USER_EXTENSIONS: Readonly<Record<string, string>> = Object.freeze({
  'permit-X11-forwarding': '',
  'permit-agent-forwarding': '',
  'permit-port-forwarding': '',
  'permit-pty': '',
  'permit-user-rc': '',
});

const CERT_TYPE_CODE: Record<CertType, number> = { user: 1, host: 2 };
const UINT64_MAX = (1n << 64n) - 1n;
const MAX_DATE_MS = 8.64e15;
// C0, DEL and C1 controls; a certificate field is printed by ssh-keygen and logged by sshd.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function malformed(message: string, cause?: unknown): CertificateError {
  return new CertificateError('ERR_POSTERN_CERT_MALFORMED', message, cause === undefined ? {} : { cause });
}

function checkText(what: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new ValidationError(`${what} must be a non-empty string`);
  if (CONTROL.test(value)) throw new ValidationError(`${what} contains a control character`);
  return value;
}

function checkOptions(what: string, options: Record<string, string> | undefined): [string, string][] {
  if (options === undefined) return [];
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new ValidationError(`${what} must be an object`);
  const entries = Object.entries(options).map(([name, value]): [string, string] => {
    checkText(`${what} name`, name);
    if (typeof value !== 'string') throw new ValidationError(`${what} "${name}" must have a string value`);
    if (CONTROL.test(value)) throw new ValidationError(`${what} "${name}" contains a control character`);
    return [name, value];
  });
  // PROTOCOL.certkeys wants options in lexical (byte) order.
  return entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function checkRequest(request: CertificateRequest): {
  subjectType: string; principals: string[]; options: [string, string][]; extensions: [string, string][]; now: Date;
} {
  if (request.type !== 'user' && request.type !== 'host') throw new ValidationError('certificate type must be "user" or "host"');
  checkText('key id', request.keyId);
  if (!Number.isFinite(request.ttlMs) || request.ttlMs <= 0) throw new ValidationError('certificate ttl must be a positive number of milliseconds');
  if (typeof request.serial !== 'bigint' || request.serial < 0n || request.serial > UINT64_MAX) {
    throw new ValidationError('certificate serial must be a bigint from 0 to 2^64-1');
  }
  if (!Array.isArray(request.principals)) throw new ValidationError('principals must be a list');
  const principals = request.principals.map((p) => checkText('principal', p));
  if (request.type === 'user' && principals.length === 0) throw new ValidationError('a user certificate needs at least one principal');
  const dup = principals.find((p, i) => principals.indexOf(p) !== i);
  if (dup !== undefined) throw new ValidationError(`principal "${dup}" is listed twice`);
  const now = request.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new ValidationError('now must be a valid date');
  if (!Buffer.isBuffer(request.subjectPublicKey)) throw new ValidationError('subject public key must be a wire blob');
  let subjectType: string;
  try {
    subjectType = wireKeyType(request.subjectPublicKey);
    if (!isPublicKeyType(subjectType)) throw new Error(`unsupported key type "${subjectType}"`);
    publicKeyFromWire(request.subjectPublicKey);
  } catch (err) {
    throw new ValidationError('subject public key must be an ed25519, ecdsa or rsa public key', { cause: err });
  }
  const options = checkOptions('critical option', request.criticalOptions);
  if (request.type === 'host' && options.length > 0) throw new ValidationError('host certificates take no critical options');
  const extensions = checkOptions('extension', request.extensions ?? (request.type === 'user' ? DEFAULT_USER_EXTENSIONS : {}));
  return { subjectType, principals, options, extensions, now };
}

function encodeOptions(entries: [string, string][]): Buffer {
  const w = new SshWriter();
  for (const [name, value] of entries) {
    w.string(name);
    // An empty value is an empty string; any other value is a string inside the string.
    w.string(value === '' ? Buffer.alloc(0) : new SshWriter().string(value).toBuffer());
  }
  return w.toBuffer();
}

function decodeOptions(what: string, data: Buffer): Record<string, string> {
  const r = new SshReader(data, what);
  const out: Record<string, string> = {};
  while (r.remaining > 0) {
    const name = r.string();
    const value = r.bytes();
    if (Object.hasOwn(out, name)) throw malformed(`certificate ${what} "${escapeControl(name)}" appears twice`);
    let text = '';
    if (value.length > 0) {
      const inner = new SshReader(value, what);
      text = inner.string();
      inner.done();
    }
    // An own property whatever the name (found by fuzzing): `out["__proto__"] = …` was a no-op,
    // so a critical option of that name vanished instead of being refused as unknown.
    Object.defineProperty(out, name, { value: text, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function secondsToDate(seconds: bigint): Date {
  const ms = seconds * 1000n;
  return new Date(ms > BigInt(MAX_DATE_MS) ? MAX_DATE_MS : Number(ms));
}

/** Signs a certificate for `request.subjectPublicKey` with the CA key pair. */
export function signCertificate(caKeyPair: SshKeyPair, request: CertificateRequest): SshCertificate {
  const { subjectType, principals, options, extensions, now } = checkRequest(request);
  const nowMs = now.getTime();
  const validAfter = BigInt(Math.max(0, Math.floor((nowMs - CLOCK_SKEW_MS) / 1000)));
  const validBefore = BigInt(Math.floor((nowMs + request.ttlMs) / 1000));
  if (validBefore <= validAfter) throw new ValidationError('certificate ttl is too short');
  const subjectFields = new SshReader(request.subjectPublicKey, 'subject public key');
  subjectFields.string();
  const principalList = new SshWriter();
  for (const p of principals) principalList.string(p);
  const body = new SshWriter()
    .string(certTypeFor(subjectType))
    .string(randomBytes(32))
    .raw(subjectFields.rest())
    .uint64(request.serial)
    .uint32(CERT_TYPE_CODE[request.type])
    .string(request.keyId)
    .string(principalList.toBuffer())
    .uint64(validAfter)
    .uint64(validBefore)
    .string(encodeOptions(options))
    .string(encodeOptions(extensions))
    .string('') // reserved
    .string(caKeyPair.publicWire)
    .toBuffer();
  const signature = signSsh(caKeyPair.privateKey, body);
  return parseCertificate(new SshWriter().raw(body).string(signature).toBuffer());
}

/** Parses a certificate from an authorized_keys-style line or a raw wire blob; rejects trailing data. */
export function parseCertificate(lineOrWire: string | Uint8Array): SshCertificate {
  let raw: Buffer;
  if (typeof lineOrWire === 'string') {
    let parsed;
    try {
      parsed = parseAuthorizedKey(lineOrWire);
    } catch (err) {
      throw malformed('not a certificate line: expected "TYPE-cert-v01@openssh.com BASE64 [COMMENT]"', err);
    }
    if (!certBaseType(parsed.type)) throw malformed(`a ${parsed.type} key is not a certificate`);
    raw = parsed.wire;
  } else {
    raw = Buffer.from(lineOrWire);
  }
  try {
    return decodeCertificate(raw);
  } catch (err) {
    if (err instanceof SshFormatError || (err instanceof CertificateError && err.code.startsWith('ERR_POSTERN_KEY_'))) {
      throw malformed(`certificate is malformed: ${err.message}`, err);
    }
    throw err;
  }
}

function decodeCertificate(raw: Buffer): SshCertificate {
  const r = new SshReader(raw, 'certificate');
  const certType = r.string();
  const keyType = certBaseType(certType);
  if (!keyType) throw malformed(`unsupported certificate type "${escapeControl(certType)}"`);
  const nonce = Buffer.from(r.bytes());
  const subjectPublicKey = new SshWriter().string(keyType).raw(readKeyFields(r, keyType)).toBuffer();
  publicKeyFromWire(subjectPublicKey);
  const serial = r.uint64();
  const typeCode = r.uint32();
  const type: CertType | undefined = typeCode === 1 ? 'user' : typeCode === 2 ? 'host' : undefined;
  if (!type) throw malformed(`unknown certificate type code ${typeCode}`);
  const keyId = r.string();
  const principalReader = new SshReader(r.bytes(), 'certificate principals');
  const principals: string[] = [];
  while (principalReader.remaining > 0) principals.push(principalReader.string());
  const validAfterSeconds = r.uint64();
  const validBeforeSeconds = r.uint64();
  const criticalOptions = decodeOptions('critical options', r.bytes());
  const extensions = decodeOptions('extensions', r.bytes());
  r.bytes(); // reserved
  const signatureKey = Buffer.from(r.bytes());
  const caType = wireKeyType(signatureKey);
  if (!isPublicKeyType(caType)) throw malformed(`certificate is signed by an unsupported key type "${escapeControl(caType)}"`);
  publicKeyFromWire(signatureKey);
  const signature = Buffer.from(r.bytes());
  r.done();
  return {
    type, certType, keyType, nonce, subjectPublicKey, serial, keyId, principals,
    validAfter: secondsToDate(validAfterSeconds), validBefore: secondsToDate(validBeforeSeconds),
    validAfterSeconds, validBeforeSeconds, criticalOptions, extensions, signatureKey, signature, raw,
  };
}

/** Formats a certificate as one line, as `ssh-keygen -s` writes `*-cert.pub`. */
export function formatCertificate(cert: SshCertificate, comment?: string): string {
  if (comment !== undefined && /[\r\n]/.test(comment)) throw new ValidationError('a certificate comment cannot contain a line break');
  const line = `${cert.certType} ${cert.raw.toString('base64')}`;
  return comment ? `${line} ${comment}` : line;
}

/** The bytes the CA signed: everything before the signature field. */
export function certificateSignedBytes(cert: SshCertificate): Buffer {
  return cert.raw.subarray(0, cert.raw.length - 4 - cert.signature.length);
}

function fail(code: string, message: string): CertificateError {
  return new CertificateError(code, message, { status: 401 });
}

/**
 * Checks a certificate's CA, signature, type, validity window and principal, in the
 * order OpenSSH does; throws CertificateError with a code saying which check failed.
 */
export function verifyCertificate(cert: SshCertificate, options: VerifyCertificateOptions): void {
  if (!options.caPublicKeys.some((ca) => Buffer.compare(ca, cert.signatureKey) === 0)) {
    throw fail('ERR_POSTERN_CERT_UNKNOWN_CA', `certificate is signed by an unknown ca ${fingerprintSha256(cert.signatureKey)}`);
  }
  if (!verifySsh(cert.signatureKey, certificateSignedBytes(cert), cert.signature)) {
    throw fail('ERR_POSTERN_CERT_BAD_SIGNATURE', 'certificate signature is invalid');
  }
  if (options.type !== undefined && cert.type !== options.type) {
    throw fail('ERR_POSTERN_CERT_WRONG_TYPE', `certificate is a ${cert.type} certificate, not a ${options.type} certificate`);
  }
  const now = BigInt(Math.floor((options.now ?? new Date()).getTime() / 1000));
  if (now < cert.validAfterSeconds) {
    throw fail('ERR_POSTERN_CERT_NOT_YET_VALID', `certificate is not valid before ${cert.validAfter.toISOString()}`);
  }
  if (now >= cert.validBeforeSeconds) {
    throw fail('ERR_POSTERN_CERT_EXPIRED', `certificate expired at ${cert.validBefore.toISOString()}`);
  }
  if (options.principal !== undefined && !cert.principals.includes(options.principal)) {
    // sshd refuses a certificate with no principals too, so an empty list matches nobody.
    const listed = cert.principals.length ? cert.principals.map(escapeControl).join(', ') : 'none';
    throw fail('ERR_POSTERN_CERT_PRINCIPAL', `certificate is not valid for principal "${escapeControl(options.principal)}" (it lists: ${listed})`);
  }
}

function when(seconds: bigint, date: Date, edge: string): string {
  return seconds === 0n || seconds === UINT64_MAX ? edge : date.toISOString();
}

function optionLines(options: Record<string, string>): string {
  const names = Object.keys(options);
  if (names.length === 0) return ' (none)';
  return names.map((n) => `\n    ${escapeControl(n)}${options[n] ? ` ${escapeControl(options[n])}` : ''}`).join('');
}

/** A few lines describing a certificate for people, like `ssh-keygen -L`; control characters escaped. */
export function certificateSummary(cert: SshCertificate): string {
  return [
    `Type: ${cert.certType} ${cert.type} certificate`,
    `Public key: ${cert.keyType} ${fingerprintSha256(cert.subjectPublicKey)}`,
    `Signing CA: ${wireKeyType(cert.signatureKey)} ${fingerprintSha256(cert.signatureKey)}`,
    `Key ID: "${escapeControl(cert.keyId)}"`,
    `Serial: ${cert.serial}`,
    `Valid: from ${when(cert.validAfterSeconds, cert.validAfter, 'always')} to ${when(cert.validBeforeSeconds, cert.validBefore, 'forever')}`,
    `Principals: ${cert.principals.length ? cert.principals.map(escapeControl).join(', ') : '(none)'}`,
    `Critical Options:${optionLines(cert.criticalOptions)}`,
    `Extensions:${optionLines(cert.extensions)}`,
  ].join('\n');
}

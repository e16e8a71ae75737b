/**
 * The SSH wire encoding of RFC 4251 section 5: big-endian integers, length-prefixed
 * strings, two's-complement mpints. Every OpenSSH format in src/ssh (keys, signatures,
 * certificates, the agent protocol) is built from these.
 */
import { PosternError } from '../core/errors.ts';

const UINT32_MAX = 0xffff_ffff;
const UINT64_MAX = (1n << 64n) - 1n;

/** Bytes that do not follow the SSH wire encoding (truncated, oversized, trailing data). */
export class SshFormatError extends PosternError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('ERR_POSTERN_SSH_FORMAT', message, { status: 400, ...options });
  }
}

/** Builds an SSH wire message field by field; `toBuffer()` returns the bytes. */
export class SshWriter {
  private readonly parts: Buffer[] = [];
  private size = 0;

  /** Appends raw bytes with no length prefix. */
  raw(bytes: Uint8Array): this {
    const buf = Buffer.from(bytes);
    this.parts.push(buf);
    this.size += buf.length;
    return this;
  }

  /** Appends one byte (0–255). */
  byte(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xff) throw new RangeError(`byte out of range: ${value}`);
    return this.raw(Buffer.of(value));
  }

  /** Appends a boolean as one byte, 1 or 0. */
  boolean(value: boolean): this {
    return this.byte(value ? 1 : 0);
  }

  /** Appends a big-endian uint32. */
  uint32(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > UINT32_MAX) throw new RangeError(`uint32 out of range: ${value}`);
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(value);
    return this.raw(buf);
  }

  /** Appends a big-endian uint64. */
  uint64(value: bigint): this {
    if (value < 0n || value > UINT64_MAX) throw new RangeError(`uint64 out of range: ${value}`);
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64BE(value);
    return this.raw(buf);
  }

  /** Appends a length-prefixed string; text is encoded as UTF-8. */
  string(value: string | Uint8Array): this {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    this.uint32(bytes.length);
    return this.raw(bytes);
  }

  /** Same as `string()`, for binary data. */
  bytes(value: Uint8Array): this {
    return this.string(value);
  }

  /**
   * Appends an mpint. A bigint may be negative; a Buffer is read as an unsigned
   * big-endian magnitude (as JWK and raw key fields are).
   */
  mpint(value: bigint | Uint8Array): this {
    return this.string(typeof value === 'bigint' ? bigintToMpint(value) : unsignedToMpint(Buffer.from(value)));
  }

  /** The bytes written so far. */
  toBuffer(): Buffer {
    return Buffer.concat(this.parts, this.size);
  }
}

/** Reads SSH wire fields in order; throws SshFormatError when the data runs out. */
export class SshReader {
  private readonly buf: Buffer;
  private pos = 0;
  private readonly what: string;

  /** `what` names the data in error messages ("certificate", "agent reply"). */
  constructor(data: Uint8Array, what = 'ssh data') {
    this.buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.what = what;
  }

  /** How many bytes are left unread. */
  get remaining(): number {
    return this.buf.length - this.pos;
  }

  /** Where the next read starts, from the beginning of the data. */
  get offset(): number {
    return this.pos;
  }

  /** The bytes read between offset `start` and now (to keep a span of fields whole). */
  since(start: number): Buffer {
    return this.buf.subarray(start, this.pos);
  }

  /** Reads `length` raw bytes. */
  raw(length: number): Buffer {
    if (length > this.remaining) {
      throw new SshFormatError(`${this.what} is truncated: needed ${length} bytes at offset ${this.pos}, ${this.remaining} left`);
    }
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  /** Reads every byte that is left. */
  rest(): Buffer {
    return this.raw(this.remaining);
  }

  /** Reads one byte. */
  byte(): number {
    return this.raw(1)[0];
  }

  /** Reads a boolean byte (any non-zero is true, as RFC 4251 says). */
  boolean(): boolean {
    return this.byte() !== 0;
  }

  /** Reads a big-endian uint32. */
  uint32(): number {
    return this.raw(4).readUInt32BE(0);
  }

  /** Reads a big-endian uint64. */
  uint64(): bigint {
    return this.raw(8).readBigUInt64BE(0);
  }

  /** Reads a length-prefixed string as bytes (a view into the data, not a copy). */
  bytes(): Buffer {
    const length = this.uint32();
    return this.raw(length);
  }

  /** Reads a length-prefixed string as UTF-8 text; rejects bytes that are not UTF-8. */
  string(): string {
    const bytes = this.bytes();
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch (err) {
      throw new SshFormatError(`${this.what} has a string that is not valid utf-8`, { cause: err });
    }
  }

  /** Reads an mpint as a bigint. */
  mpint(): bigint {
    return mpintToBigint(this.bytes());
  }

  /** Reads an mpint that must not be negative, as its minimal unsigned magnitude. */
  mpintUnsigned(): Buffer {
    const bytes = this.bytes();
    if (bytes.length > 0 && bytes[0] & 0x80) throw new SshFormatError(`${this.what} has a negative mpint where a positive one belongs`);
    let start = 0;
    while (start < bytes.length && bytes[start] === 0) start++;
    return bytes.subarray(start);
  }

  /** Throws unless every byte was read; call after the last field. */
  done(): void {
    if (this.remaining !== 0) throw new SshFormatError(`${this.what} has ${this.remaining} unexpected trailing bytes`);
  }
}

function unsignedToMpint(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  if (trimmed.length === 0) return Buffer.alloc(0);
  // A set high bit would read as negative: prefix a zero byte.
  return trimmed[0] & 0x80 ? Buffer.concat([Buffer.of(0), trimmed]) : Buffer.from(trimmed);
}

function bigintToMpint(value: bigint): Buffer {
  if (value === 0n) return Buffer.alloc(0);
  if (value > 0n) {
    let hex = value.toString(16);
    if (hex.length % 2) hex = `0${hex}`;
    return unsignedToMpint(Buffer.from(hex, 'hex'));
  }
  // Two's complement in the fewest bytes whose top bit is set.
  let bytes = 1;
  while (-(1n << BigInt(bytes * 8 - 1)) > value) bytes++;
  const twos = (1n << BigInt(bytes * 8)) + value;
  return Buffer.from(twos.toString(16).padStart(bytes * 2, '0'), 'hex');
}

function mpintToBigint(bytes: Buffer): bigint {
  if (bytes.length === 0) return 0n;
  const unsigned = BigInt(`0x${bytes.toString('hex')}`);
  return bytes[0] & 0x80 ? unsigned - (1n << BigInt(bytes.length * 8)) : unsigned;
}

/**
 * The storage contract of the auth role: a key/value store with ordered keys, in the shape
 * of Teleport's `lib/backend`. SQLite (sqlite.ts) is the embedded default; a PostgreSQL
 * backend fits behind the same interface, which is why every method is async.
 *
 * Keys are paths of non-empty parts joined by '/' (`users/alice`, build them with `key()`).
 * They sort bytewise by their UTF-8 encoding (SQLite's BINARY collation, PostgreSQL's
 * `COLLATE "C"`), so time-ordered keys such as zero-padded timestamps read in order.
 * Every write gives the item a new revision, larger than any revision the store gave before.
 * An item whose `expires` is at or before the clock's now is gone: no read returns it, a
 * `create` may replace it, and a sweep deletes it for good.
 */
import { PosternError, ValidationError } from '../core/errors.ts';

/** One stored item. */
export interface Item {
  /** The full key, e.g. `users/alice`. */
  key: string;
  /** The value, usually JSON (see getJson/putJson). */
  value: string;
  /** Changes on every write of this key; pass it to compareAndSwap. */
  revision: number;
  /** When the item disappears; absent for items that never expire. */
  expires?: Date;
}

/** Options for writes. */
export interface WriteOptions {
  /** When the item disappears; omitted means never. Each write sets it anew. */
  expires?: Date;
}

/** Options for getRange. */
export interface RangeOptions {
  /** At most this many items (0 returns none); all when omitted. */
  limit?: number;
  /** Largest key first. */
  reverse?: boolean;
  /** Exclusive cursor: only keys after it in the read direction (below it when reverse). */
  after?: string;
}

/** One operation of an atomic batch. */
export type AtomicOp =
  | { kind: 'create'; key: string; value: string; expires?: Date }
  | { kind: 'put'; key: string; value: string; expires?: Date }
  | { kind: 'cas'; key: string; expectedRevision: number; value: string; expires?: Date }
  | { kind: 'delete'; key: string; expectedRevision?: number };

/** A key/value store with ordered keys, revisions and expiry. */
export interface Backend {
  /** Reads one live item. */
  get(key: string): Promise<Item | undefined>;
  /** Reads the live items under a prefix (`users` or `users/` reads `users/…`, never `usersx`), in key order. */
  getRange(prefix: string, opts?: RangeOptions): Promise<Item[]>;
  /** Writes a new item; AlreadyExistsError if a live item has the key. */
  create(key: string, value: string, opts?: WriteOptions): Promise<Item>;
  /** Writes an item whether or not it exists. */
  put(key: string, value: string, opts?: WriteOptions): Promise<Item>;
  /** Replaces a live item; NotFoundError if there is none. */
  update(key: string, value: string, opts?: WriteOptions): Promise<Item>;
  /** Replaces a live item only if its revision is still `expectedRevision`; ConflictError otherwise or if it is gone. */
  compareAndSwap(key: string, expectedRevision: number, value: string, opts?: WriteOptions): Promise<Item>;
  /** Deletes an item; true if a live one was there. */
  delete(key: string): Promise<boolean>;
  /** Deletes every item under a prefix (same matching as getRange); returns how many live ones went. */
  deleteRange(prefix: string): Promise<number>;
  /** Applies all ops in one transaction or none of them; throws the first failing op's error. Returns the batch's revision. */
  atomic(ops: readonly AtomicOp[]): Promise<number>;
  /** Releases the store; later calls fail. Safe to call twice. */
  close(): Promise<void>;
}

/** Joins key parts with '/'; each part must be non-empty and contain no '/'. */
export function key(...parts: string[]): string {
  if (parts.length === 0) throw new ValidationError('a storage key needs at least one part');
  for (const part of parts) {
    if (typeof part !== 'string' || part === '') throw new ValidationError('a storage key part must not be empty');
    if (part.includes('/')) throw new ValidationError(`a storage key part must not contain "/": ${JSON.stringify(part)}`);
  }
  return parts.join('/');
}

/** Checks a full key: non-empty parts separated by single '/'. Backends call it on every write and read. */
export function checkKey(k: string): void {
  if (typeof k !== 'string' || k === '') throw new ValidationError('a storage key must not be empty');
  if (k.startsWith('/') || k.endsWith('/') || k.includes('//')) {
    throw new ValidationError(`a storage key must not have empty parts: ${JSON.stringify(k)}`);
  }
}

/** Normalises a range prefix to '' (everything) or a string ending in '/'. */
export function rangePrefix(prefix: string): string {
  if (typeof prefix !== 'string') throw new ValidationError('a storage range prefix must be a string');
  if (prefix === '') return '';
  const p = prefix.endsWith('/') ? prefix : `${prefix}/`;
  checkKey(p.slice(0, -1));
  return p;
}

/** The smallest string above every key under a normalised prefix `p` (ending in '/'): '/' + 1 is '0'. */
export function prefixEnd(p: string): string {
  return `${p.slice(0, -1)}0`;
}

/** Checks one write's key, value, expiry and expected revision, as every backend must before writing. */
export function checkOp(op: AtomicOp): void {
  checkKey(op.key);
  if (op.kind !== 'delete') {
    if (typeof op.value !== 'string') throw new ValidationError(`the value for "${op.key}" must be a string, got ${typeof op.value}`);
    const e: unknown = op.expires;
    if (e !== undefined && (!(e instanceof Date) || !Number.isFinite(e.getTime()))) throw new ValidationError('expires must be a valid Date');
  }
  const rev: unknown = op.kind === 'cas' || op.kind === 'delete' ? op.expectedRevision : undefined;
  if ((op.kind === 'cas' || rev !== undefined) && (typeof rev !== 'number' || !Number.isSafeInteger(rev))) {
    throw new ValidationError('a revision must be an integer');
  }
}

/** Checks getRange's options. */
export function checkRangeOptions(opts: RangeOptions): void {
  const { limit, after } = opts;
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) throw new ValidationError('limit must be a non-negative integer');
  if (after !== undefined && typeof after !== 'string') throw new ValidationError('after must be a key');
}

/** Reads an item and parses its value as JSON; undefined if absent. */
export async function getJson<T>(backend: Backend, k: string): Promise<T | undefined> {
  const item = await backend.get(k);
  if (!item) return undefined;
  try {
    return JSON.parse(item.value) as T;
  } catch (err) {
    throw new PosternError('ERR_POSTERN_STORAGE_CORRUPT', `the stored value of "${k}" is not valid JSON`, { cause: err });
  }
}

/** Writes a value as JSON (an upsert, like put). */
export async function putJson(backend: Backend, k: string, value: unknown, opts?: WriteOptions): Promise<Item> {
  const text = JSON.stringify(value);
  if (text === undefined) throw new ValidationError(`cannot store ${typeof value} as JSON under "${k}"`);
  return backend.put(k, text, opts);
}

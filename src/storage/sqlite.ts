/**
 * The embedded Backend: SQLite through the built-in `node:sqlite`, in `<dataDir>/postern.db`.
 *
 * Durability: WAL with `synchronous=FULL`, so a write whose promise resolved has been
 * fsynced to the WAL and survives kill -9 and power loss. Every write runs in a
 * `BEGIN IMMEDIATE` transaction that also bumps a one-row revision counter, so revisions
 * grow across the whole store and a deleted-then-recreated key never reuses one (no ABA
 * for compareAndSwap). node:sqlite is synchronous: each call runs to completion on the
 * event loop, which also means calls in one process never interleave inside a transaction.
 * Another process holding the lock makes a call wait up to the busy timeout.
 *
 * Permissions: the data directory is created 0700 and the database files 0600; if they
 * exist with wider modes they are tightened (as `ensurePrivateDir` does), and if that is
 * not possible opening fails with a ConfigError.
 */
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { serverPaths } from '../core/server-paths.ts';
import { DatabaseSync } from 'node:sqlite';
import type { StatementSync } from 'node:sqlite';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';
import { AlreadyExistsError, ConfigError, ConflictError, NotFoundError, PosternError, ValidationError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { silentLogger } from '../core/logger.ts';
import type { AtomicOp, Backend, Item, RangeOptions, WriteOptions } from './backend.ts';
import { checkKey, checkOp, checkRangeOptions, prefixEnd, rangePrefix } from './backend.ts';
import { migrate } from './migrations.ts';
import { openError, operationError, sqliteCode } from './sqlite-errors.ts';

/** The database file's name inside the data directory (the tree: src/core/server-paths.ts). */
export { DB_FILE_NAME } from '../core/server-paths.ts';

/** Options for openSqliteBackend. */
export interface SqliteBackendOptions {
  /** The data directory; created 0700 if missing. */
  dataDir: string;
  /** Decides what has expired; the system clock unless a test fakes it. */
  clock?: Clock;
  /** How long a call waits for another process's lock before failing (default 5000 ms). */
  busyTimeoutMs?: number;
  /** How often expired items are deleted (default 60000 ms); 0 turns the timer off. */
  sweepIntervalMs?: number;
  /** Where failures of the background sweep go. */
  log?: Logger;
}

/** The SQLite backend: a Backend plus what only an embedded store has. */
export interface SqliteBackend extends Backend {
  /** The database file. */
  readonly path: string;
  /** Deletes expired items now; returns how many. Runs on open and on a timer anyway. */
  sweep(): Promise<number>;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5000;
const DEFAULT_SWEEP_INTERVAL_MS = 60_000;

interface Row {
  key: string;
  value: string;
  revision: number;
  expires: number | null;
}

type WriteOp = Exclude<AtomicOp, { kind: 'delete' }>;

function toItem(row: Row): Item {
  const item: Item = { key: row.key, value: row.value, revision: Number(row.revision) };
  if (row.expires !== null) item.expires = new Date(Number(row.expires));
  return item;
}

function expiresMs(expires: unknown): number | null {
  if (expires === undefined) return null;
  if (!(expires instanceof Date) || !Number.isFinite(expires.getTime())) throw new ValidationError('expires must be a valid Date');
  return expires.getTime();
}

function fsError(err: unknown, what: string, hint: string): ConfigError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  return new ConfigError(`${what} (${code})`, { cause: err, hint });
}

/** Creates the data directory 0700, or tightens an existing one; ConfigError if it cannot. */
function prepareDataDir(dir: string): void {
  const hint = 'Check that the user running postern owns the data directory';
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw fsError(err, `cannot create the data directory ${dir}`, hint);
  }
  const st = statSync(dir);
  if (!st.isDirectory()) throw new ConfigError(`the data directory ${dir} is not a directory`, { hint: 'Point --data-dir at a directory' });
  if (st.mode & 0o077) {
    try {
      chmodSync(dir, 0o700);
    } catch (err) {
      throw fsError(err, `the data directory ${dir} has mode ${(st.mode & 0o777).toString(8)} and cannot be made private (0700)`, hint);
    }
  }
}

/** Creates the database file 0600 before SQLite does (SQLite would use 0644), or tightens it and its WAL files. */
function prepareDbFiles(path: string): void {
  const hint = 'Check that the user running postern owns the data directory and the files in it';
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError(err, `cannot create the database ${path}`, hint);
  }
  for (const p of [path, `${path}-wal`, `${path}-shm`]) {
    let st;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (!st.isFile()) throw new ConfigError(`${p} is not a regular file`, { hint: 'Move it away; postern keeps its database there' });
    if (st.mode & 0o177) {
      try {
        chmodSync(p, 0o600);
      } catch (err) {
        throw fsError(err, `${p} has mode ${(st.mode & 0o777).toString(8)} and cannot be made private (0600)`, hint);
      }
    }
  }
}

class SqliteStore implements SqliteBackend {
  readonly path: string;
  #db: DatabaseSync | undefined;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #stmts: ReturnType<typeof prepareStatements>;
  readonly #ranges = new Map<string, StatementSync>();
  #timer: NodeJS.Timeout | undefined;

  constructor(db: DatabaseSync, path: string, clock: Clock, log: Logger) {
    this.#db = db;
    this.path = path;
    this.#clock = clock;
    this.#log = log;
    this.#stmts = prepareStatements(db);
  }

  startSweeper(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.#timer = setInterval(() => {
      try {
        this.sweepNow();
      } catch (err) {
        // Expired items are invisible anyway; the next sweep retries.
        this.#log.warn({ err, path: this.path }, 'storage: sweeping expired items failed');
      }
    }, intervalMs);
    this.#timer.unref();
  }

  #now(): number {
    return this.#clock.now().getTime();
  }

  #live(k: string, now: number): Row | undefined {
    return this.#stmts.get.get(k, now) as Row | undefined;
  }

  #run<T>(fn: () => T): T {
    if (!this.#db) throw new PosternError('ERR_POSTERN_STORAGE_CLOSED', 'storage is closed');
    try {
      return fn();
    } catch (err) {
      throw operationError(err, this.path);
    }
  }

  /** Runs fn in a write transaction with the next revision; rolls back if it throws. */
  #write<T>(fn: (rev: number, now: number) => T): T {
    return this.#run(() => {
      const db = this.#db as DatabaseSync;
      this.#stmts.begin.run();
      try {
        const rev = Number((this.#stmts.nextRevision.get() as { last: number }).last);
        const out = fn(rev, this.#now());
        this.#stmts.commit.run();
        return out;
      } catch (err) {
        if (db.isTransaction) this.#stmts.rollback.run();
        throw err;
      }
    });
  }

  #apply(op: WriteOp, rev: number, now: number): Item {
    const live = this.#live(op.key, now);
    if (op.kind === 'create' && live) throw new AlreadyExistsError(`key "${op.key}" already exists`);
    if (op.kind === 'cas') {
      if (!live) throw new ConflictError(`key "${op.key}" changed: it no longer exists`);
      if (Number(live.revision) !== op.expectedRevision) {
        throw new ConflictError(`key "${op.key}" changed: revision ${live.revision}, expected ${op.expectedRevision}`);
      }
    }
    const exp = expiresMs(op.expires);
    this.#stmts.upsert.run(op.key, op.value, rev, exp);
    return toItem({ key: op.key, value: op.value, revision: rev, expires: exp });
  }

  #checkWrite(op: AtomicOp): void {
    checkOp(op);
  }

  async get(k: string): Promise<Item | undefined> {
    checkKey(k);
    return this.#run(() => {
      const row = this.#live(k, this.#now());
      return row ? toItem(row) : undefined;
    });
  }

  async getRange(prefix: string, opts: RangeOptions = {}): Promise<Item[]> {
    const p = rangePrefix(prefix);
    const { limit, reverse = false, after } = opts;
    checkRangeOptions(opts);
    if (limit === 0) return [];
    return this.#run(() => {
      const stmt = this.#rangeStatement(p !== '', after !== undefined, reverse);
      const args: (string | number)[] = [this.#now()];
      if (p !== '' && after !== undefined) args.push(...(reverse ? [p, prefixEnd(p), after] : [p, after, prefixEnd(p)]));
      else if (p !== '') args.push(p, prefixEnd(p));
      else if (after !== undefined) args.push(after);
      args.push(limit ?? -1);
      return (stmt.all(...args) as unknown as Row[]).map(toItem);
    });
  }

  #rangeStatement(hasPrefix: boolean, hasAfter: boolean, reverse: boolean): StatementSync {
    const id = `${+hasPrefix}${+hasAfter}${+reverse}`;
    let stmt = this.#ranges.get(id);
    if (!stmt) {
      const where = ['(expires IS NULL OR expires > ?)'];
      // One bound per side, so SQLite seeks the primary key to the cursor: with two upper
      // bounds (the prefix's end and the cursor) it bounds by one and filters the other row
      // by row, which made paging backwards through 1,000,000 audit events quadratic.
      // A key under the prefix is longer than it, so `key > prefix` is `key >= prefix`.
      if (hasPrefix && hasAfter) where.push(reverse ? 'key > ? AND key < MIN(?, ?)' : 'key > MAX(?, ?) AND key < ?');
      else if (hasPrefix) where.push('key >= ?', 'key < ?');
      else if (hasAfter) where.push(reverse ? 'key < ?' : 'key > ?');
      // A negative LIMIT means no limit in SQLite.
      const sql = `SELECT key, value, revision, expires FROM items WHERE ${where.join(' AND ')} ORDER BY key ${reverse ? 'DESC' : 'ASC'} LIMIT ?`;
      stmt = (this.#db as DatabaseSync).prepare(sql);
      this.#ranges.set(id, stmt);
    }
    return stmt;
  }

  async create(k: string, value: string, opts: WriteOptions = {}): Promise<Item> {
    const op: WriteOp = { kind: 'create', key: k, value, expires: opts.expires };
    this.#checkWrite(op);
    return this.#write((rev, now) => this.#apply(op, rev, now));
  }

  async put(k: string, value: string, opts: WriteOptions = {}): Promise<Item> {
    const op: WriteOp = { kind: 'put', key: k, value, expires: opts.expires };
    this.#checkWrite(op);
    return this.#write((rev, now) => this.#apply(op, rev, now));
  }

  async update(k: string, value: string, opts: WriteOptions = {}): Promise<Item> {
    const op: WriteOp = { kind: 'put', key: k, value, expires: opts.expires };
    this.#checkWrite(op);
    return this.#write((rev, now) => {
      if (!this.#live(k, now)) throw new NotFoundError(`key "${k}" does not exist`);
      return this.#apply(op, rev, now);
    });
  }

  async compareAndSwap(k: string, expectedRevision: number, value: string, opts: WriteOptions = {}): Promise<Item> {
    const op: WriteOp = { kind: 'cas', key: k, expectedRevision, value, expires: opts.expires };
    this.#checkWrite(op);
    return this.#write((rev, now) => this.#apply(op, rev, now));
  }

  async delete(k: string): Promise<boolean> {
    checkKey(k);
    // No revision is taken: a delete leaves nothing that carries one.
    return this.#run(() => Number(this.#stmts.deleteLive.run(k, this.#now()).changes) > 0);
  }

  async deleteRange(prefix: string): Promise<number> {
    const p = rangePrefix(prefix);
    return this.#run(() => {
      const now = this.#now();
      const res = p === '' ? this.#stmts.deleteAllLive.run(now) : this.#stmts.deleteRangeLive.run(p, prefixEnd(p), now);
      return Number(res.changes);
    });
  }

  async atomic(ops: readonly AtomicOp[]): Promise<number> {
    // Checked at run time for callers that pass parsed JSON; `as unknown` keeps Array.isArray from narrowing ops to any[].
    if (!Array.isArray(ops as unknown) || ops.length === 0) throw new ValidationError('an atomic batch needs at least one operation');
    const seen = new Set<string>();
    for (const op of ops) {
      this.#checkWrite(op);
      if (seen.has(op.key)) throw new ValidationError(`an atomic batch names key "${op.key}" twice`);
      seen.add(op.key);
    }
    return this.#write((rev, now) => {
      ops.forEach((op, i) => {
        try {
          if (op.kind === 'delete') {
            if (op.expectedRevision !== undefined) {
              const live = this.#live(op.key, now);
              if (!live || Number(live.revision) !== op.expectedRevision) {
                throw new ConflictError(`key "${op.key}" changed: ${live ? `revision ${live.revision}` : 'it no longer exists'}, expected ${op.expectedRevision}`);
              }
            }
            this.#stmts.deleteLive.run(op.key, now);
          } else {
            this.#apply(op, rev, now);
          }
        } catch (err) {
          if (err instanceof PosternError) {
            err.message = `${err.message} (operation ${i + 1} of ${ops.length} in an atomic batch)`;
          }
          throw err;
        }
      });
      return rev;
    });
  }

  /** Deletes expired rows now (synchronously). */
  sweepNow(): number {
    return this.#run(() => {
      this.#stmts.begin.run();
      try {
        const n = Number(this.#stmts.sweep.run(this.#now()).changes);
        this.#stmts.commit.run();
        return n;
      } catch (err) {
        if ((this.#db as DatabaseSync).isTransaction) this.#stmts.rollback.run();
        throw err;
      }
    });
  }

  async sweep(): Promise<number> {
    return this.sweepNow();
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const db = this.#db;
    this.#db = undefined;
    this.#ranges.clear();
    if (db?.isOpen) db.close();
  }
}

function prepareStatements(db: DatabaseSync) {
  const live = '(expires IS NULL OR expires > ?)';
  return {
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    nextRevision: db.prepare('UPDATE revision SET last = last + 1 WHERE id = 1 RETURNING last'),
    get: db.prepare(`SELECT key, value, revision, expires FROM items WHERE key = ? AND ${live}`),
    upsert: db.prepare(`INSERT INTO items (key, value, revision, expires) VALUES (?, ?, ?, ?)
      ON CONFLICT (key) DO UPDATE SET value = excluded.value, revision = excluded.revision, expires = excluded.expires`),
    deleteLive: db.prepare(`DELETE FROM items WHERE key = ? AND ${live}`),
    deleteRangeLive: db.prepare(`DELETE FROM items WHERE key >= ? AND key < ? AND ${live}`),
    deleteAllLive: db.prepare(`DELETE FROM items WHERE ${live}`),
    sweep: db.prepare('DELETE FROM items WHERE expires IS NOT NULL AND expires <= ?'),
  };
}

/** Opens (creating, migrating and sweeping) the SQLite store in `dataDir`. */
export async function openSqliteBackend(opts: SqliteBackendOptions): Promise<SqliteBackend> {
  const clock = opts.clock ?? systemClock;
  const busyTimeoutMs = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) throw new ValidationError('busyTimeoutMs must be a non-negative integer');
  prepareDataDir(opts.dataDir);
  const path = serverPaths(opts.dataDir).database;
  prepareDbFiles(path);

  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { enableForeignKeyConstraints: true });
    db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    const mode = db.prepare('PRAGMA journal_mode = WAL').get()?.journal_mode;
    if (mode !== 'wal') {
      throw new ConfigError(`cannot turn on write-ahead logging for ${path} (journal mode stays "${String(mode)}")`, {
        hint: 'Keep the data directory on a local filesystem; network filesystems do not support it',
      });
    }
    db.exec('PRAGMA synchronous = FULL');
    db.exec('PRAGMA foreign_keys = ON');
    migrate(db, { location: path, now: () => clock.now() });
    const store = new SqliteStore(db, path, clock, opts.log ?? silentLogger);
    // Sweeping takes the write lock, so this also finds out now whether another process holds it.
    store.sweepNow();
    prepareDbFiles(path);
    store.startSweeper(opts.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
    return store;
  } catch (err) {
    try {
      if (db?.isOpen) db.close();
    } catch { /* the open error is the one to report */ }
    // The startup sweep reports lock errors as operation errors; at open they are configuration errors.
    throw openError(err instanceof PosternError && sqliteCode(err.cause) !== undefined ? err.cause : err, path);
  }
}

/**
 * The PostgreSQL Backend, for several auth servers on one database: node-postgres with a
 * connection pool, behind the same contract as sqlite.ts.
 *
 * Revisions come from one sequence (`postern_revision`), so they grow across every auth
 * server; a batch takes its revision only once its checks have passed, so a refused batch
 * burns none. Single writes are single statements (their WHERE clauses are the checks, and
 * row locks make them safe against a concurrent writer); `atomic` is one transaction that
 * locks the rows it names in key order, checks, then writes. Expiry is decided by this
 * process's clock, as with SQLite (auth servers keep their clocks in sync with NTP).
 *
 * When the server is away every call fails with ERR_POSTERN_STORAGE_UNAVAILABLE (503).
 * The pool drops broken connections and opens new ones on the next call, so the store
 * works again by itself once PostgreSQL is back. Nothing is retried behind the caller's
 * back except a read, or a transaction PostgreSQL aborted as a deadlock before it wrote.
 */
import pg from 'pg';
import type { PoolClient, QueryResultRow } from 'pg';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';
import { AlreadyExistsError, ConfigError, ConflictError, NotFoundError, PosternError, ValidationError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { silentLogger } from '../core/logger.ts';
import type { AtomicOp, Backend, Item, RangeOptions, WriteOptions } from './backend.ts';
import { checkKey, checkOp, checkRangeOptions, prefixEnd, rangePrefix } from './backend.ts';
import { migratePostgres } from './postgres-migrations.ts';
import type { PgMigration } from './postgres-migrations.ts';
import { isBrokenConnection, isRetryable, isUnavailable, pgOpenError, pgOperationError } from './postgres-errors.ts';

/** Options for openPostgresBackend. */
export interface PostgresBackendOptions {
  /** postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…]; libpq's PG* variables and ~/.pgpass fill the gaps. */
  url: string;
  /** Decides what has expired; the system clock unless a test fakes it. */
  clock?: Clock;
  /** How often expired items are deleted (default 60000 ms); 0 turns the timer off. */
  sweepIntervalMs?: number;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** How long opening a connection may take before the call fails as unavailable (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Where pool and sweep failures go. */
  log?: Logger;
  /** The schema steps; the shipped list unless a test brings its own. */
  migrations?: readonly PgMigration[];
}

/** The PostgreSQL backend: a Backend plus sweeping on demand. */
export interface PostgresBackend extends Backend {
  /** The database's URL without its password, for messages. */
  readonly location: string;
  /** Deletes expired items now; returns how many. Runs on open and on a timer anyway. */
  sweep(): Promise<number>;
}

const DEFAULT_SWEEP_INTERVAL_MS = 60_000;
const DEFAULT_POOL_SIZE = 10;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
// A statement that gets no answer for this long (a silent network partition) fails instead of hanging.
const QUERY_TIMEOUT_MS = 30_000;
const RETRIES = 3;

interface Row {
  key: string;
  value: string;
  revision: string;
  expires: Date | null;
}

const COLUMNS = 'key, value, revision::text AS revision, expires';
const LIVE = '(expires IS NULL OR expires > $now)';

type WriteOp = Exclude<AtomicOp, { kind: 'delete' }>;

function toItem(row: Row): Item {
  const item: Item = { key: row.key, value: row.value, revision: Number(row.revision) };
  if (row.expires !== null) item.expires = new Date(row.expires.getTime());
  return item;
}

/** Replaces `$now` and `$name` placeholders with positional ones, so SQL reads by name. */
function named(sql: string, params: Record<string, unknown>): { text: string; values: unknown[] } {
  const names: string[] = [];
  const text = sql.replace(/\$([a-z]+)/g, (_m, name: string) => {
    if (!(name in params)) throw new Error(`no value for $${name}`);
    let i = names.indexOf(name);
    if (i < 0) i = names.push(name) - 1;
    return `$${i + 1}`;
  });
  return { text, values: names.map((n) => params[n]) };
}

/** The URL with its password masked, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const p of ['password', 'sslpassword']) if (u.searchParams.has(p)) u.searchParams.set(p, '***');
    return u.toString();
  } catch {
    return 'the --storage URL';
  }
}

class PostgresStore implements PostgresBackend {
  readonly location: string;
  #pool: pg.Pool | undefined;
  readonly #clock: Clock;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;

  constructor(pool: pg.Pool, location: string, clock: Clock, log: Logger) {
    this.#pool = pool;
    this.location = location;
    this.#clock = clock;
    this.#log = log;
  }

  startSweeper(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.#timer = setInterval(() => {
      this.sweep().catch((err: unknown) => {
        // Expired items are invisible anyway; the next sweep retries.
        this.#log.warn({ err, location: this.location }, 'storage: sweeping expired items failed');
      });
    }, intervalMs);
    this.#timer.unref();
  }

  #openPool(): pg.Pool {
    if (!this.#pool) throw new PosternError('ERR_POSTERN_STORAGE_CLOSED', 'storage is closed');
    return this.#pool;
  }

  /** One statement on any pooled connection; `retry` for reads, which are safe to run again. */
  async #query<R extends QueryResultRow>(sql: string, params: Record<string, unknown>, retry = false): Promise<pg.QueryResult<R>> {
    const q = named(sql, params);
    for (let attempt = 1; ; attempt++) {
      const pool = this.#openPool();
      try {
        return await pool.query<R>(q.text, q.values);
      } catch (err) {
        // A connection the server dropped while it sat idle in the pool fails once; a fresh one may not.
        if (retry && attempt < 2 && isUnavailable(err) && this.#pool) continue;
        throw pgOperationError(err, this.location);
      }
    }
  }

  /** Runs fn in a transaction on one connection; rolls back if it throws, runs again after a deadlock. */
  async #transaction<T>(fn: (run: <R extends QueryResultRow>(sql: string, params?: Record<string, unknown>) => Promise<pg.QueryResult<R>>) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: PoolClient;
      try {
        client = await this.#openPool().connect();
      } catch (err) {
        throw pgOperationError(err, this.location);
      }
      let broken: Error | undefined;
      // The pool stops listening while a connection is checked out; a server that goes away
      // then emits 'error' here (the pending query fails too), which must not end the process.
      const onError = (err: Error): void => { broken = err; };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const out = await fn((sql, params = {}) => {
          const q = named(sql, params);
          return client.query(q.text, q.values);
        });
        await client.query('COMMIT');
        return out;
      } catch (err) {
        if (isBrokenConnection(err)) broken = err as Error;
        else await client.query('ROLLBACK').catch((e: unknown) => { broken = e as Error; });
        if (isRetryable(err) && attempt < RETRIES) continue;
        throw pgOperationError(err, this.location);
      } finally {
        // A connection that broke is destroyed rather than handed to the next caller.
        client.removeListener('error', onError);
        client.release(broken ?? false);
      }
    }
  }

  #now(): Date {
    return this.#clock.now();
  }

  async get(k: string): Promise<Item | undefined> {
    checkKey(k);
    const r = await this.#query<Row>(`SELECT ${COLUMNS} FROM postern_items WHERE key = $key AND ${LIVE}`, { key: k, now: this.#now() }, true);
    return r.rows[0] ? toItem(r.rows[0]) : undefined;
  }

  async getRange(prefix: string, opts: RangeOptions = {}): Promise<Item[]> {
    const p = rangePrefix(prefix);
    const { limit, reverse = false, after } = opts;
    checkRangeOptions(opts);
    if (limit === 0) return [];
    const where = [LIVE];
    const params: Record<string, unknown> = { now: this.#now(), limit: limit ?? null };
    if (p !== '') {
      where.push('key >= $lo', 'key < $hi');
      params.lo = p;
      params.hi = prefixEnd(p);
    }
    if (after !== undefined) {
      where.push(reverse ? 'key < $after' : 'key > $after');
      params.after = after;
    }
    // LIMIT NULL means no limit.
    const sql = `SELECT ${COLUMNS} FROM postern_items WHERE ${where.join(' AND ')} ORDER BY key ${reverse ? 'DESC' : 'ASC'} LIMIT $limit`;
    return (await this.#query<Row>(sql, params, true)).rows.map(toItem);
  }

  async create(k: string, value: string, opts: WriteOptions = {}): Promise<Item> {
    checkOp({ kind: 'create', key: k, value, expires: opts.expires });
    // Takes the key when it is free or holds an expired item. A concurrent create of the same
    // key waits for the first to commit, then finds it live and writes nothing.
    const r = await this.#query<{ revision: string }>(`
      INSERT INTO postern_items AS i (key, value, revision, expires) VALUES ($key, $value, nextval('postern_revision'), $expires)
      ON CONFLICT (key) DO UPDATE SET value = excluded.value, revision = excluded.revision, expires = excluded.expires
        WHERE i.expires IS NOT NULL AND i.expires <= $now
      RETURNING revision::text AS revision`, { key: k, value, expires: opts.expires ?? null, now: this.#now() });
    if (r.rows.length === 0) throw new AlreadyExistsError(`key "${k}" already exists`);
    return this.#item(k, value, r.rows[0].revision, opts.expires);
  }

  async put(k: string, value: string, opts: WriteOptions = {}): Promise<Item> {
    checkOp({ kind: 'put', key: k, value, expires: opts.expires });
    const r = await this.#query<{ revision: string }>(`
      INSERT INTO postern_items (key, value, revision, expires) VALUES ($key, $value, nextval('postern_revision'), $expires)
      ON CONFLICT (key) DO UPDATE SET value = excluded.value, revision = excluded.revision, expires = excluded.expires
      RETURNING revision::text AS revision`, { key: k, value, expires: opts.expires ?? null });
    return this.#item(k, value, r.rows[0].revision, opts.expires);
  }

  async update(k: string, value: string, opts: WriteOptions = {}): Promise<Item> {
    checkOp({ kind: 'put', key: k, value, expires: opts.expires });
    const r = await this.#query<{ revision: string }>(`
      UPDATE postern_items SET value = $value, revision = nextval('postern_revision'), expires = $expires
      WHERE key = $key AND ${LIVE} RETURNING revision::text AS revision`, { key: k, value, expires: opts.expires ?? null, now: this.#now() });
    if (r.rows.length === 0) throw new NotFoundError(`key "${k}" does not exist`);
    return this.#item(k, value, r.rows[0].revision, opts.expires);
  }

  async compareAndSwap(k: string, expectedRevision: number, value: string, opts: WriteOptions = {}): Promise<Item> {
    checkOp({ kind: 'cas', key: k, expectedRevision, value, expires: opts.expires });
    const now = this.#now();
    // Under READ COMMITTED a concurrent writer's row lock makes this wait, then re-check the
    // WHERE clause against the committed row: only one of two racing swaps can match.
    const r = await this.#query<{ revision: string }>(`
      UPDATE postern_items SET value = $value, revision = nextval('postern_revision'), expires = $expires
      WHERE key = $key AND revision = $expected AND ${LIVE} RETURNING revision::text AS revision`,
    { key: k, value, expires: opts.expires ?? null, expected: expectedRevision, now });
    if (r.rows.length === 0) {
      const live = await this.get(k);
      throw new ConflictError(live
        ? `key "${k}" changed: revision ${live.revision}, expected ${expectedRevision}`
        : `key "${k}" changed: it no longer exists`);
    }
    return this.#item(k, value, r.rows[0].revision, opts.expires);
  }

  #item(k: string, value: string, revision: string, expires: Date | undefined): Item {
    const item: Item = { key: k, value, revision: Number(revision) };
    if (expires) item.expires = new Date(expires.getTime());
    return item;
  }

  async delete(k: string): Promise<boolean> {
    checkKey(k);
    // No revision is taken: a delete leaves nothing that carries one.
    const r = await this.#query(`DELETE FROM postern_items WHERE key = $key AND ${LIVE}`, { key: k, now: this.#now() });
    return (r.rowCount ?? 0) > 0;
  }

  async deleteRange(prefix: string): Promise<number> {
    const p = rangePrefix(prefix);
    const now = this.#now();
    const r = p === ''
      ? await this.#query(`DELETE FROM postern_items WHERE ${LIVE}`, { now })
      : await this.#query(`DELETE FROM postern_items WHERE key >= $lo AND key < $hi AND ${LIVE}`, { lo: p, hi: prefixEnd(p), now });
    return r.rowCount ?? 0;
  }

  async atomic(ops: readonly AtomicOp[]): Promise<number> {
    if (!Array.isArray(ops) || ops.length === 0) throw new ValidationError('an atomic batch needs at least one operation');
    const seen = new Set<string>();
    for (const op of ops) {
      checkOp(op);
      if (seen.has(op.key)) throw new ValidationError(`an atomic batch names key "${op.key}" twice`);
      seen.add(op.key);
    }
    const tagged = (err: unknown, i: number): unknown => {
      if (err instanceof PosternError) err.message = `${err.message} (operation ${i + 1} of ${ops.length} in an atomic batch)`;
      return err;
    };
    return this.#transaction(async (run) => {
      const now = this.#now();
      // Lock every existing row the batch names, in key order so two batches cannot deadlock.
      const locked = await run<Row>(`SELECT ${COLUMNS} FROM postern_items WHERE key = ANY($keys::text[]) ORDER BY key FOR UPDATE`, { keys: [...seen] });
      const rows = new Map(locked.rows.map((r) => [r.key, r]));
      const liveRow = (k: string): Row | undefined => {
        const r = rows.get(k);
        return r && (r.expires === null || r.expires.getTime() > now.getTime()) ? r : undefined;
      };
      ops.forEach((op, i) => {
        const live = liveRow(op.key);
        try {
          if (op.kind === 'create' && live) throw new AlreadyExistsError(`key "${op.key}" already exists`);
          if (op.kind === 'cas' || (op.kind === 'delete' && op.expectedRevision !== undefined)) {
            const expected = op.expectedRevision as number;
            if (!live) throw new ConflictError(`key "${op.key}" changed: it no longer exists${op.kind === 'delete' ? `, expected ${expected}` : ''}`);
            if (Number(live.revision) !== expected) throw new ConflictError(`key "${op.key}" changed: revision ${live.revision}, expected ${expected}`);
          }
        } catch (err) {
          throw tagged(err, i);
        }
      });
      // Every check passed: only now take the batch's revision.
      const rev = Number((await run<{ r: string }>("SELECT nextval('postern_revision')::text AS r")).rows[0].r);
      for (const [i, op] of ops.entries()) {
        if (op.kind === 'delete') {
          await run(`DELETE FROM postern_items WHERE key = $key AND ${LIVE}`, { key: op.key, now });
          continue;
        }
        const w = op as WriteOp;
        // A create whose key had no row may still meet one a concurrent batch inserted meanwhile.
        const guard = w.kind === 'create' ? 'WHERE i.expires IS NOT NULL AND i.expires <= $now' : '';
        const r = await run(`
          INSERT INTO postern_items AS i (key, value, revision, expires) VALUES ($key, $value, $rev, $expires)
          ON CONFLICT (key) DO UPDATE SET value = excluded.value, revision = excluded.revision, expires = excluded.expires ${guard}`,
        { key: w.key, value: w.value, rev, expires: w.expires ?? null, ...(guard ? { now } : {}) });
        if (r.rowCount === 0) throw tagged(new AlreadyExistsError(`key "${w.key}" already exists`), i);
      }
      return rev;
    });
  }

  async sweep(): Promise<number> {
    const r = await this.#query('DELETE FROM postern_items WHERE expires IS NOT NULL AND expires <= $now', { now: this.#now() });
    return r.rowCount ?? 0;
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end().catch((err: unknown) => this.#log.warn({ err }, 'storage: closing the PostgreSQL pool failed'));
  }
}

/** True for a --storage value that names a PostgreSQL database. */
export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/** Opens (migrating and sweeping) the PostgreSQL store at `url`. */
export async function openPostgresBackend(opts: PostgresBackendOptions): Promise<PostgresBackend> {
  if (!isPostgresUrl(opts.url)) {
    throw new ConfigError(`not a PostgreSQL URL: ${redactUrl(opts.url)}`, { hint: 'Use postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full' });
  }
  const location = redactUrl(opts.url);
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? silentLogger;
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize ?? DEFAULT_POOL_SIZE,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    query_timeout: QUERY_TIMEOUT_MS,
    keepAlive: true,
    application_name: 'postern',
  });
  // An idle connection the server drops (a restart, a failover) is reported here; without a
  // listener Node would end the process. The pool has already discarded it.
  pool.on('error', (err) => log.warn({ err, location }, 'storage: a PostgreSQL connection was lost; the next call opens a new one'));
  let client: PoolClient | undefined;
  const onError = (err: Error): void => log.warn({ err, location }, 'storage: the PostgreSQL connection was lost while migrating');
  try {
    client = await pool.connect();
    client.on('error', onError);
    await migratePostgres(client, { location, migrations: opts.migrations, now: () => clock.now() });
    client.removeListener('error', onError);
    client.release();
    client = undefined;
    const store = new PostgresStore(pool, location, clock, log);
    await store.sweep();
    store.startSweeper(opts.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
    return store;
  } catch (err) {
    client?.release(true);
    await pool.end().catch(() => {});
    // The start-up sweep reports operation errors; at open they become open errors.
    throw pgOpenError(err instanceof PosternError && err.code.startsWith('ERR_POSTERN_STORAGE') ? err.cause : err, location);
  }
}

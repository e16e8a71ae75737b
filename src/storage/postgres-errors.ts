/**
 * Turning node-postgres's errors into Postern errors a user (or the web API) can act on.
 *
 * PostgreSQL errors carry a five-character SQLSTATE in `code`; socket errors carry an errno
 * name (ECONNREFUSED…). node-postgres raises a few of its own without either (a dropped
 * connection, a pool that timed out connecting), which can only be told apart by message.
 * Everything that means "the server cannot be reached right now" becomes one error,
 * ERR_POSTERN_STORAGE_UNAVAILABLE (HTTP 503), so callers branch on a single code.
 */
import { ConfigError, PosternError, ValidationError } from '../core/errors.ts';

/** The code of every "PostgreSQL is away" error. */
export const STORAGE_UNAVAILABLE = 'ERR_POSTERN_STORAGE_UNAVAILABLE';

const SOCKET_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN',
  'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ENOENT',
]);

// Errors node-postgres (and pg-pool) raise with neither an SQLSTATE nor an errno.
const DRIVER_MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect/,
  /is not queryable/,
  /^Query read timeout/,
  /^Connection ended/,
  /^connect ETIMEDOUT/,
];

/** SQLSTATEs that mean the server or the link to it went away (class 08, shutdowns, no slots). */
function unavailableState(state: string): boolean {
  return state.startsWith('08') || ['57P01', '57P02', '57P03', '53300', '53400', '57P05'].includes(state);
}

function errCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

/** The SQLSTATE of a PostgreSQL error, or undefined for anything else. */
export function sqlState(err: unknown): string | undefined {
  const c = errCode(err);
  return c !== undefined && /^[0-9A-Z]{5}$/.test(c) && !c.startsWith('E') ? c : undefined;
}

/** True when the error means the server could not be reached or dropped the connection. */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof PosternError) return err.code === STORAGE_UNAVAILABLE;
  const state = sqlState(err);
  if (state !== undefined) return unavailableState(state);
  const code = errCode(err);
  if (code !== undefined && SOCKET_CODES.has(code)) return true;
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' && DRIVER_MESSAGES.some((re) => re.test(message));
}

/** True for errors after which the connection must not go back to the pool. */
export function isBrokenConnection(err: unknown): boolean {
  return isUnavailable(err) && !(err instanceof PosternError);
}

/** True for a serialization failure or deadlock: the transaction may simply run again. */
export function isRetryable(err: unknown): boolean {
  const state = sqlState(err);
  return state === '40001' || state === '40P01';
}

function detail(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown };
  const msg = String(e?.message ?? err);
  return typeof e?.code === 'string' && !msg.includes(e.code) ? `${msg} (${e.code})` : msg;
}

/** The one error callers see while PostgreSQL is away; the cause keeps the details (not the place: web users read this). */
export function unavailableError(cause: unknown): PosternError {
  return new PosternError(STORAGE_UNAVAILABLE, "the cluster's storage is unavailable", {
    cause,
    status: 503,
    hint: 'Check that the cluster\'s PostgreSQL server is running and reachable from the auth servers; Postern reconnects by itself when it is back',
  });
}

/** Maps an error met while opening the store at `location` (a URL without its password). */
export function pgOpenError(err: unknown, location: string): PosternError {
  if (err instanceof PosternError) return err;
  if (isUnavailable(err)) {
    return new PosternError(STORAGE_UNAVAILABLE, `the cluster's storage is unavailable: cannot connect to ${location}: ${detail(err)}`, {
      cause: err,
      status: 503,
      hint: `Check that the PostgreSQL server at ${location} is running and reachable from this host, then start postern again`,
    });
  }
  const state = sqlState(err);
  if (state === '28P01' || state === '28000') {
    return new ConfigError(`PostgreSQL at ${location} refused the login: ${detail(err)}`, {
      cause: err,
      hint: 'Check the user in --storage and its password (in the URL, $PGPASSWORD or ~/.pgpass), and pg_hba.conf on the server',
    });
  }
  if (state === '3D000') {
    return new ConfigError(`the database in ${location} does not exist`, {
      cause: err,
      hint: 'Create it first, e.g.  createdb -O postern postern',
    });
  }
  if (state === '42501') {
    return new ConfigError(`the PostgreSQL user of ${location} may not create Postern's tables: ${detail(err)}`, {
      cause: err,
      hint: 'Make that user the owner of the database (ALTER DATABASE … OWNER TO …) or grant it CREATE on the schema',
    });
  }
  return new ConfigError(`cannot open the PostgreSQL store ${location}: ${detail(err)}`, {
    cause: err,
    hint: 'Check the --storage URL (postgres://USER@HOST:PORT/DATABASE?sslmode=…)',
  });
}

/** Maps an error met by a read or write on an open store; PosternErrors pass through. */
export function pgOperationError(err: unknown, location: string): PosternError {
  if (err instanceof PosternError) return err;
  if (isUnavailable(err) || ['28P01', '28000', '3D000'].includes(sqlState(err) ?? '')) return unavailableError(err);
  const state = sqlState(err);
  if (state === '40001' || state === '40P01' || state === '55P03') {
    return new PosternError('ERR_POSTERN_STORAGE_BUSY', 'the cluster\'s storage is busy: a write met another one', {
      cause: err,
      status: 503,
      hint: 'Try again',
    });
  }
  if (state === '53100') {
    return new PosternError('ERR_POSTERN_STORAGE_FULL', `the disk of the PostgreSQL server ${location} is full`, {
      cause: err,
      status: 507,
      hint: 'Free some space on the PostgreSQL server; writes fail until then',
    });
  }
  // A NUL character or an index row over PostgreSQL's size limit: the caller's data, not the server.
  if (state === '22021' || state === '22P05' || state === '54000') {
    return new ValidationError(`PostgreSQL cannot store this key or value: ${detail(err)}`, { cause: err });
  }
  return new PosternError('ERR_POSTERN_STORAGE', `storage failure on ${location}: ${detail(err)}`, { cause: err });
}

/** Turning node:sqlite's errors (a numeric `errcode`) into Postern errors a user can act on. */
import { ConfigError, PosternError } from '../core/errors.ts';

/** SQLite primary result codes Postern tells apart (sqlite3.h). */
export const SqliteCode = {
  error: 1,
  perm: 3,
  busy: 5,
  locked: 6,
  readonly: 8,
  ioerr: 10,
  corrupt: 11,
  full: 13,
  cantopen: 14,
  notadb: 26,
} as const;

/** The primary result code of a node:sqlite error, or undefined for anything else. */
export function sqliteCode(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; errcode?: unknown };
  if (e.code !== 'ERR_SQLITE_ERROR' || typeof e.errcode !== 'number') return undefined;
  // Extended codes carry the primary code in their low byte.
  return e.errcode & 0xff;
}

/** True for errors that come from the file, the disk or another process, not from our SQL. */
export function isEnvironmentError(err: unknown): boolean {
  const c = sqliteCode(err);
  return c !== undefined && c !== SqliteCode.error;
}

function detail(err: unknown): string {
  const e = err as { errstr?: unknown; message?: unknown };
  return String(e?.errstr ?? e?.message ?? err);
}

/** Maps an error met while opening the database at `path` to a ConfigError; PosternErrors pass through. */
export function openError(err: unknown, path: string): PosternError {
  if (err instanceof PosternError) return err;
  switch (sqliteCode(err)) {
    case SqliteCode.busy:
    case SqliteCode.locked:
      return new ConfigError(`the database ${path} is locked by another process`, {
        cause: err,
        hint: 'Stop the other postern process that uses this data directory, or give this one its own --data-dir',
      });
    case SqliteCode.readonly:
    case SqliteCode.perm:
    case SqliteCode.cantopen:
      return new ConfigError(`cannot open the database ${path} for writing: ${detail(err)}`, {
        cause: err,
        hint: 'Check that the user running postern owns the data directory and can write postern.db in it',
      });
    case SqliteCode.notadb:
    case SqliteCode.corrupt:
      return new ConfigError(`${path} is not a Postern database or is damaged: ${detail(err)}`, {
        cause: err,
        hint: 'Restore it from a backup, or move it away to start with an empty database',
      });
    case SqliteCode.full:
      return new ConfigError(`the disk holding ${path} is full`, { cause: err, hint: 'Free some space and start postern again' });
    case SqliteCode.ioerr:
      return new ConfigError(`i/o error on the database ${path}: ${detail(err)}`, { cause: err });
    default:
      return new ConfigError(`cannot open the database ${path}: ${detail(err)}`, { cause: err });
  }
}

/** Maps an error met by a read or write on an open database; PosternErrors pass through. */
export function operationError(err: unknown, path: string): PosternError {
  if (err instanceof PosternError) return err;
  switch (sqliteCode(err)) {
    case SqliteCode.busy:
    case SqliteCode.locked:
      return new PosternError('ERR_POSTERN_STORAGE_BUSY', `the database ${path} is locked by another process`, {
        cause: err,
        status: 503,
        hint: 'Stop the other postern process that uses this data directory',
      });
    case SqliteCode.full:
      return new PosternError('ERR_POSTERN_STORAGE_FULL', `the disk holding ${path} is full`, {
        cause: err,
        status: 507,
        hint: 'Free some space; writes fail until then',
      });
    default:
      return new PosternError('ERR_POSTERN_STORAGE', `storage failure on ${path}: ${detail(err)}`, { cause: err });
  }
}

/**
 * Choosing the store: SQLite in the data directory (one auth server, the default) or a
 * PostgreSQL database (several auth servers), from `postern serve --storage`.
 */
import type { Clock } from '../core/clock.ts';
import { ConfigError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { Backend } from './backend.ts';
import { isPostgresUrl, openPostgresBackend, redactUrl } from './postgres.ts';
import { openSqliteBackend } from './sqlite.ts';

/** Where the auth service keeps its data. */
export type StorageSpec =
  | { kind: 'sqlite'; dataDir: string }
  | { kind: 'postgres'; url: string };

/** What every backend takes besides its location. */
export interface OpenBackendOptions {
  clock?: Clock;
  log?: Logger;
}

/** Reads a --storage value: a postgres:// URL, or nothing for SQLite in `dataDir`. */
export function parseStorageSpec(text: string | undefined, dataDir: string): StorageSpec {
  if (text === undefined || text.trim() === '') return { kind: 'sqlite', dataDir };
  const t = text.trim();
  if (isPostgresUrl(t)) {
    try {
      new URL(t);
    } catch {
      throw new ConfigError(`--storage is not a valid URL: ${redactUrl(t)}`, { hint: 'Use postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full' });
    }
    return { kind: 'postgres', url: t };
  }
  throw new ConfigError(`unknown --storage "${t.replace(/\/\/[^@/]*@/, '//…@')}"`, {
    hint: 'Give a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full), or leave it out to keep SQLite in the data directory',
  });
}

/** Describes a spec for the ready line and logs, without any password. */
export function describeStorage(spec: StorageSpec): string {
  return spec.kind === 'sqlite' ? 'sqlite' : redactUrl(spec.url);
}

/** Opens the store a spec names; the caller closes it. */
export async function openBackend(spec: StorageSpec, opts: OpenBackendOptions = {}): Promise<Backend> {
  if (spec.kind === 'postgres') return openPostgresBackend({ url: spec.url, clock: opts.clock, log: opts.log });
  return openSqliteBackend({ dataDir: spec.dataDir, clock: opts.clock, log: opts.log });
}

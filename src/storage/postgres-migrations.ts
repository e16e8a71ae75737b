/**
 * Schema migrations of the PostgreSQL store, the counterpart of migrations.ts. Tables are
 * named `postern_*` so a database shared with other applications stays readable;
 * `postern_schema_version` holds one row per applied step.
 *
 * Several auth servers may start at the same moment on an empty database. Each step runs
 * in its own transaction that first takes a transaction-scoped advisory lock: the second
 * server waits, then finds the step applied and does nothing. A schema newer than this
 * code is refused, as SQLite's is.
 *
 * Append migrations; never edit or reorder one that has shipped.
 */
import type { ClientBase } from 'pg';
import { ConfigError } from '../core/errors.ts';
import { POSTERN_APPLICATION_ID } from './migrations.ts';
import type { MigrationResult } from './migrations.ts';

/** One step of the PostgreSQL schema. */
export interface PgMigration {
  /** 1, 2, 3…: the schema version this step produces. */
  version: number;
  /** What the step does, stored in postern_schema_version. */
  description: string;
  /** The SQL of the step (several statements allowed); runs inside the runner's transaction. */
  sql: string;
}

/** The advisory lock every migration holds: the bytes "PSTN", as SQLite's application_id. */
export const MIGRATION_LOCK_ID = POSTERN_APPLICATION_ID;

/** Every PostgreSQL migration, in order. */
export const PG_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    description: 'items table with expiry index and the revision sequence',
    // COLLATE "C": keys sort bytewise by their UTF-8 encoding, as the Backend contract says,
    // whatever the database's default collation. The sequence keeps CACHE 1 (the default):
    // with a per-session cache two auth servers would hand out revisions out of order.
    sql: `
      CREATE TABLE postern_items (
        key TEXT COLLATE "C" PRIMARY KEY,
        value TEXT NOT NULL,
        revision BIGINT NOT NULL,
        expires TIMESTAMPTZ NULL
      );
      CREATE INDEX postern_items_expires ON postern_items (expires) WHERE expires IS NOT NULL;
      CREATE SEQUENCE postern_revision AS BIGINT;
    `,
  },
];

/** The PostgreSQL schema version this code writes. */
export const LATEST_PG_SCHEMA_VERSION: number = PG_MIGRATIONS[PG_MIGRATIONS.length - 1].version;

/** Options for migratePostgres(). */
export interface PgMigrateOptions {
  /** Where the database is (a URL without its password), for messages. */
  location: string;
  /** The steps to apply; the shipped list unless a test brings its own. */
  migrations?: readonly PgMigration[];
  /** The time recorded in postern_schema_version. */
  now?: () => Date;
}

/** Reads the schema version: 0 when postern_schema_version does not exist. */
export async function readPgSchemaVersion(client: ClientBase): Promise<number> {
  const t = await client.query<{ t: string | null }>("SELECT to_regclass('postern_schema_version')::text AS t");
  if (!t.rows[0]?.t) return 0;
  const r = await client.query<{ v: string | null }>('SELECT MAX(version)::text AS v FROM postern_schema_version');
  return Number(r.rows[0]?.v ?? 0);
}

function newerError(from: number, latest: number, location: string): ConfigError {
  return new ConfigError(`the database ${location} has schema version ${from}, but this Postern knows versions up to ${latest} only`, {
    hint: 'A newer Postern wrote this database: upgrade Postern to that version or later on every auth server (downgrades are not supported)',
  });
}

/** Brings the schema up to the latest version; refuses a schema newer than this code. */
export async function migratePostgres(client: ClientBase, opts: PgMigrateOptions): Promise<MigrationResult> {
  const migrations = opts.migrations ?? PG_MIGRATIONS;
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration list out of order: entry ${i} has version ${m.version}`);
  });
  const latest = migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
  const now = opts.now ?? (() => new Date());

  const enc = await client.query<{ server_encoding: string }>('SHOW server_encoding');
  if (enc.rows[0]?.server_encoding !== 'UTF8') {
    throw new ConfigError(`the database ${opts.location} uses the encoding ${enc.rows[0]?.server_encoding}, not UTF8`, {
      hint: "Create the database with  CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0",
    });
  }
  const from = await readPgSchemaVersion(client);
  if (from > latest) throw newerError(from, latest, opts.location);

  for (const m of migrations) {
    if (m.version <= from) continue;
    await client.query('BEGIN');
    try {
      // Taken before anything is read or created, so concurrent starters apply each step once.
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID]);
      await client.query(`CREATE TABLE IF NOT EXISTS postern_schema_version (
        version INTEGER PRIMARY KEY,
        description TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL
      )`);
      const current = await readPgSchemaVersion(client);
      if (current > latest) throw newerError(current, latest, opts.location);
      if (current < m.version) {
        if (current !== m.version - 1) throw new Error(`schema is at version ${current}, cannot apply migration ${m.version}`);
        if (current === 0) {
          const other = await client.query<{ t: string | null }>("SELECT to_regclass('postern_items')::text AS t");
          if (other.rows[0]?.t) {
            throw new ConfigError(`the database ${opts.location} has a postern_items table but no schema version`, {
              hint: 'Point --storage at a database of its own, or drop that table',
            });
          }
        }
        await client.query(m.sql);
        await client.query('INSERT INTO postern_schema_version (version, description, applied_at) VALUES ($1, $2, $3)', [m.version, m.description, now()]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }
  return { from, to: await readPgSchemaVersion(client) };
}

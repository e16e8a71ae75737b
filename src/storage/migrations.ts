/**
 * Schema migrations of the SQLite store. `schema_version` holds one row per applied
 * migration; the database's version is the largest. Opening applies the missing
 * migrations in order, each in its own transaction, so a crash leaves the database at the
 * last whole version. A database from a newer Postern is refused rather than guessed at:
 * an older binary cannot know what a newer schema means.
 *
 * Append migrations; never edit or reorder one that has shipped.
 */
import type { DatabaseSync } from 'node:sqlite';
import { ConfigError } from '../core/errors.ts';
import { isEnvironmentError } from './sqlite-errors.ts';

/** One step of the schema. */
export interface Migration {
  /** 1, 2, 3…: the schema version this step produces. */
  version: number;
  /** What the step does, stored in schema_version for whoever inspects the file. */
  description: string;
  /** Applies the step; runs inside a transaction the runner opens and commits. */
  up(db: DatabaseSync): void;
}

/** Marks the file as Postern's (`PRAGMA application_id`, the bytes "PSTN"). */
export const POSTERN_APPLICATION_ID = 0x5053544e;

/** Every migration, in order. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'items table with expiry index and the revision counter',
    up(db) {
      db.exec(`
        CREATE TABLE items (
          key TEXT PRIMARY KEY NOT NULL,
          value TEXT NOT NULL,
          revision INTEGER NOT NULL,
          expires INTEGER NULL
        ) WITHOUT ROWID;
        CREATE INDEX items_expires ON items (expires);
        CREATE TABLE revision (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          last INTEGER NOT NULL
        );
        INSERT INTO revision (id, last) VALUES (1, 0);
      `);
    },
  },
];

/** The schema version this code writes. */
export const LATEST_SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1].version;

/** What migrate() did. */
export interface MigrationResult {
  /** The version the database had on opening (0 for a new one). */
  from: number;
  /** The version it has now. */
  to: number;
}

/** Options for migrate(). */
export interface MigrateOptions {
  /** Where the database is, for messages. */
  location: string;
  /** The steps to apply; the shipped list unless a test brings its own. */
  migrations?: readonly Migration[];
  /** The time recorded in schema_version. */
  now?: () => Date;
}

/** Reads the schema version: 0 for a database without a schema_version table. */
export function readSchemaVersion(db: DatabaseSync): number {
  const table = db.prepare("SELECT 1 AS x FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'").get();
  if (!table) return 0;
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get();
  return Number(row?.v ?? 0);
}

function checkList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration list out of order: entry ${i} has version ${m.version}`);
  });
}

function checkOwnership(db: DatabaseSync, location: string): void {
  const appId = Number(db.prepare('PRAGMA application_id').get()?.application_id ?? 0);
  const hint = 'Point --data-dir at a Postern data directory, or move this file away';
  if (appId !== 0 && appId !== POSTERN_APPLICATION_ID) {
    throw new ConfigError(`${location} is an SQLite database of another application (id 0x${appId.toString(16)})`, { hint });
  }
  if (appId === 0 && readSchemaVersion(db) === 0) {
    const other = db.prepare("SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' LIMIT 1").get();
    if (other) throw new ConfigError(`${location} is an SQLite database but not a Postern one (it has "${String(other.name)}")`, { hint });
  }
}

/** Brings the schema up to the latest version; refuses a database newer than this code. */
export function migrate(db: DatabaseSync, opts: MigrateOptions): MigrationResult {
  const migrations = opts.migrations ?? MIGRATIONS;
  checkList(migrations);
  const latest = migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
  const now = opts.now ?? (() => new Date());

  checkOwnership(db, opts.location);
  const from = readSchemaVersion(db);
  if (from > latest) {
    throw new ConfigError(`the database ${opts.location} has schema version ${from}, but this Postern knows versions up to ${latest} only`, {
      hint: 'A newer Postern wrote this data directory: upgrade Postern to that version or later (downgrades are not supported)',
    });
  }

  for (const m of migrations) {
    if (m.version <= from) continue;
    // IMMEDIATE takes the write lock first, so two processes opening at once apply each step once.
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(`CREATE TABLE IF NOT EXISTS schema_version (
        version INTEGER PRIMARY KEY NOT NULL,
        description TEXT NOT NULL,
        applied_at TEXT NOT NULL
      )`);
      const current = readSchemaVersion(db);
      if (current < m.version) {
        if (current !== m.version - 1) throw new Error(`schema is at version ${current}, cannot apply migration ${m.version}`);
        m.up(db);
        db.prepare('INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)').run(m.version, m.description, now().toISOString());
        db.exec(`PRAGMA application_id = ${POSTERN_APPLICATION_ID}`);
      }
      db.exec('COMMIT');
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      // A lock, a read-only file or a full disk is the environment's fault: let the caller say so.
      if (isEnvironmentError(err) || err instanceof ConfigError) throw err;
      throw new ConfigError(`schema migration ${m.version} (${m.description}) of ${opts.location} failed: ${(err as Error).message}`, {
        cause: err,
        hint: 'The database was left at the previous version; report this as a Postern bug',
      });
    }
  }
  return { from, to: readSchemaVersion(db) };
}

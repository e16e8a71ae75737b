import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ConfigError } from '../../src/core/errors.ts';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, POSTERN_APPLICATION_ID, migrate, readSchemaVersion } from '../../src/storage/migrations.ts';
import type { Migration } from '../../src/storage/migrations.ts';
import { DB_FILE_NAME, openSqliteBackend } from '../../src/storage/sqlite.ts';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'postern-storage-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function tempDb(t: TestContext): DatabaseSync {
  const db = new DatabaseSync(join(tempDir(t), 'test.db'));
  t.after(() => { if (db.isOpen) db.close(); });
  return db;
}

const tables = (db: DatabaseSync) =>
  db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all().map((r) => String(r.name));

const versionRows = (db: DatabaseSync) =>
  db.prepare('SELECT version, description FROM schema_version ORDER BY version').all().map((r) => ({ version: Number(r.version), description: String(r.description) }));

/** Test migrations: v1 makes a table and a row, v2 adds a column. */
const v1: Migration = {
  version: 1,
  description: 'notes table',
  up(db) { db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL); INSERT INTO notes (body) VALUES ('first')"); },
};
const v2: Migration = {
  version: 2,
  description: 'notes.author',
  up(db) { db.exec("ALTER TABLE notes ADD COLUMN author TEXT NOT NULL DEFAULT 'unknown'"); },
};

test('the shipped migrations are numbered 1, 2, 3… and migration 1 creates the items table', () => {
  MIGRATIONS.forEach((m, i) => assert.equal(m.version, i + 1));
  assert.equal(LATEST_SCHEMA_VERSION, MIGRATIONS.length);
});

test('an empty database is migrated to the latest version', (t) => {
  const db = tempDb(t);
  assert.equal(readSchemaVersion(db), 0);
  const result = migrate(db, { location: 'test.db', now: () => new Date('2026-01-01T00:00:00Z') });
  assert.deepEqual(result, { from: 0, to: LATEST_SCHEMA_VERSION });
  assert.equal(readSchemaVersion(db), LATEST_SCHEMA_VERSION);
  assert.ok(tables(db).includes('items'));
  assert.ok(tables(db).includes('schema_version'));
  assert.deepEqual(versionRows(db).map((r) => r.version), MIGRATIONS.map((m) => m.version));
  assert.equal(db.prepare('SELECT applied_at FROM schema_version WHERE version = 1').get()?.applied_at, '2026-01-01T00:00:00.000Z');
  assert.equal(Number(db.prepare('PRAGMA application_id').get()?.application_id), POSTERN_APPLICATION_ID);

  const columns = db.prepare('PRAGMA table_info(items)').all().map((c) => ({ name: c.name, type: c.type, pk: Number(c.pk), notnull: Number(c.notnull) }));
  assert.deepEqual(columns, [
    { name: 'key', type: 'TEXT', pk: 1, notnull: 1 },
    { name: 'value', type: 'TEXT', pk: 0, notnull: 1 },
    { name: 'revision', type: 'INTEGER', pk: 0, notnull: 1 },
    { name: 'expires', type: 'INTEGER', pk: 0, notnull: 0 },
  ]);
  const indexes = db.prepare('PRAGMA index_list(items)').all().map((i) => String(i.name));
  assert.ok(indexes.includes('items_expires'), indexes.join(','));
});

test('migrating again is a no-op', (t) => {
  const db = tempDb(t);
  migrate(db, { location: 'test.db', migrations: [v1, v2] });
  const rows = versionRows(db);
  assert.deepEqual(migrate(db, { location: 'test.db', migrations: [v1, v2] }), { from: 2, to: 2 });
  assert.deepEqual(versionRows(db), rows);
  // v1's insert ran once
  assert.equal(Number(db.prepare('SELECT COUNT(*) AS n FROM notes').get()?.n), 1);
});

test('an older database is upgraded by the missing migrations only', (t) => {
  const db = tempDb(t);
  assert.deepEqual(migrate(db, { location: 'test.db', migrations: [v1] }), { from: 0, to: 1 });
  db.exec("INSERT INTO notes (body) VALUES ('written by version 1')");

  assert.deepEqual(migrate(db, { location: 'test.db', migrations: [v1, v2] }), { from: 1, to: 2 });
  assert.deepEqual(versionRows(db), [{ version: 1, description: 'notes table' }, { version: 2, description: 'notes.author' }]);
  const notes = db.prepare('SELECT body, author FROM notes ORDER BY id').all().map((r) => [r.body, r.author]);
  assert.deepEqual(notes, [['first', 'unknown'], ['written by version 1', 'unknown']]);
});

test('a failing migration is rolled back and leaves the previous version', (t) => {
  const db = tempDb(t);
  const broken: Migration = {
    version: 2,
    description: 'half done',
    up(d) {
      d.exec('CREATE TABLE half (x INTEGER)');
      d.exec('INSERT INTO no_such_table VALUES (1)');
    },
  };
  assert.throws(() => migrate(db, { location: 'test.db', migrations: [v1, broken] }), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /schema migration 2 \(half done\) of test\.db failed/);
    return true;
  });
  assert.equal(readSchemaVersion(db), 1);
  assert.ok(!tables(db).includes('half'));
  assert.equal(db.isTransaction, false);
  // Fixed code upgrades the same file.
  assert.deepEqual(migrate(db, { location: 'test.db', migrations: [v1, v2] }), { from: 1, to: 2 });
});

test('a database from a newer Postern is refused with a hint to upgrade', (t) => {
  const db = tempDb(t);
  migrate(db, { location: 'test.db', migrations: [v1, v2] });
  assert.throws(() => migrate(db, { location: 'test.db', migrations: [v1] }), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /schema version 2, but this Postern knows versions up to 1 only/);
    assert.match(err.hint ?? '', /upgrade Postern/);
    return true;
  });
  assert.equal(readSchemaVersion(db), 2);
});

test('openSqliteBackend refuses a data directory written by a newer Postern and leaves it alone', async (t) => {
  const dataDir = join(tempDir(t), 'data');
  const b = await openSqliteBackend({ dataDir });
  await b.put('users/alice', 'a');
  await b.close();

  const path = join(dataDir, DB_FILE_NAME);
  const raw = new DatabaseSync(path);
  raw.prepare('INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)').run(LATEST_SCHEMA_VERSION + 1, 'from the future', new Date().toISOString());
  raw.close();

  await assert.rejects(openSqliteBackend({ dataDir }), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.code, 'ERR_POSTERN_CONFIG');
    assert.match(err.message, new RegExp(`schema version ${LATEST_SCHEMA_VERSION + 1}`));
    assert.match(err.hint ?? '', /upgrade Postern/);
    return true;
  });
  const check = new DatabaseSync(path, { readOnly: true });
  t.after(() => check.close());
  assert.equal(check.prepare("SELECT value FROM items WHERE key = 'users/alice'").get()?.value, 'a');
});

test('openSqliteBackend migrates an empty file and re-opening does not migrate again', async (t) => {
  const dataDir = join(tempDir(t), 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  new DatabaseSync(join(dataDir, DB_FILE_NAME)).close(); // a zero-length file: an empty database
  for (let i = 0; i < 3; i++) {
    const b = await openSqliteBackend({ dataDir });
    await b.put(`k/${i}`, String(i));
    await b.close();
  }
  const db = new DatabaseSync(join(dataDir, DB_FILE_NAME), { readOnly: true });
  t.after(() => db.close());
  assert.deepEqual(versionRows(db).map((r) => r.version), MIGRATIONS.map((m) => m.version));
  assert.equal(Number(db.prepare('SELECT COUNT(*) AS n FROM items').get()?.n), 3);
});

test('a migration list out of order is a programming error', (t) => {
  const db = tempDb(t);
  assert.throws(() => migrate(db, { location: 'test.db', migrations: [v2, v1] }), /out of order/);
  assert.equal(readSchemaVersion(db), 0);
});

test('a database of another application (by application_id) is refused', (t) => {
  const db = tempDb(t);
  db.exec('PRAGMA application_id = 1234');
  assert.throws(() => migrate(db, { location: 'test.db' }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /another application/);
    return true;
  });
});

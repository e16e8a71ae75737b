/**
 * The SQLite backend: the Backend contract suite (test/helpers/backend-contract.ts), then
 * what only an embedded store has: file modes, files that are not ours, locks held by
 * another process, a read-only database.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import { ConfigError } from '../../src/core/errors.ts';
import { DB_FILE_NAME, openSqliteBackend } from '../../src/storage/sqlite.ts';
import { hasCode, runBackendContract } from '../helpers/backend-contract.ts';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'postern-storage-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Rows in the items table, expired or not, read on a connection of its own. */
function rawRowCount(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Number(db.prepare('SELECT COUNT(*) AS n FROM items').get()?.n);
  } finally {
    db.close();
  }
}

runBackendContract({
  async newStore(t) {
    const dataDir = join(tempDir(t), 'data');
    return {
      open: (opts = {}) => openSqliteBackend({ dataDir, ...opts }),
      rawRowCount: async () => rawRowCount(join(dataDir, DB_FILE_NAME)),
    };
  },
});

test('the data directory is created 0700 and the database 0600', async (t) => {
  const dataDir = join(tempDir(t), 'data');
  const b = await openSqliteBackend({ dataDir });
  t.after(() => b.close());
  await b.put('k', 'v');
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
  const path = join(dataDir, DB_FILE_NAME);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  // SQLite gives the WAL files the database's mode.
  for (const f of [`${path}-wal`, `${path}-shm`]) {
    if (existsSync(f)) assert.equal(statSync(f).mode & 0o777, 0o600, f);
  }
});

test('a data directory and database with wider modes are tightened', async (t) => {
  const dataDir = join(tempDir(t), 'data');
  mkdirSync(dataDir, { mode: 0o755 });
  chmodSync(dataDir, 0o755);
  const path = join(dataDir, DB_FILE_NAME);
  writeFileSync(path, '');
  chmodSync(path, 0o644);
  const b = await openSqliteBackend({ dataDir });
  t.after(() => b.close());
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
  assert.equal(statSync(path).mode & 0o777, 0o600);
});

test('a file that is not a database is a ConfigError', async (t) => {
  const dataDir = join(tempDir(t), 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  writeFileSync(join(dataDir, DB_FILE_NAME), 'this is not an sqlite file, just some text that is long enough'.repeat(20), { mode: 0o600 });
  await assert.rejects(openSqliteBackend({ dataDir }), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /not a Postern database/);
    assert.ok(err.hint);
    return true;
  });
});

test('an SQLite database of another application is a ConfigError', async (t) => {
  const dataDir = join(tempDir(t), 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  const other = new DatabaseSync(join(dataDir, DB_FILE_NAME));
  other.exec('CREATE TABLE photos (id INTEGER PRIMARY KEY)');
  other.close();
  await assert.rejects(openSqliteBackend({ dataDir }), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /not a Postern one/);
    return true;
  });
});

test('a database locked by another process is a ConfigError', async (t) => {
  const dataDir = join(tempDir(t), 'data');
  (await openSqliteBackend({ dataDir })).close();
  const holder = new DatabaseSync(join(dataDir, DB_FILE_NAME));
  holder.exec('BEGIN EXCLUSIVE');
  t.after(() => holder.close());
  await assert.rejects(openSqliteBackend({ dataDir, busyTimeoutMs: 50 }), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /locked by another process/);
    return true;
  });
  holder.exec('ROLLBACK');
  const b = await openSqliteBackend({ dataDir, busyTimeoutMs: 50 });
  await b.close();
});

test('a write that meets a lock held too long fails with ERR_POSTERN_STORAGE_BUSY', async (t) => {
  const dataDir = join(tempDir(t), 'data');
  const b = await openSqliteBackend({ dataDir, busyTimeoutMs: 50 });
  t.after(() => b.close());
  const holder = new DatabaseSync(join(dataDir, DB_FILE_NAME));
  t.after(() => holder.close());
  holder.exec('BEGIN IMMEDIATE');
  await assert.rejects(b.put('k', 'v'), hasCode('ERR_POSTERN_STORAGE_BUSY'));
  holder.exec('ROLLBACK');
  await b.put('k', 'v');
});

test('a data directory path that is a file is a ConfigError', async (t) => {
  const file = join(tempDir(t), 'file');
  writeFileSync(file, 'x');
  await assert.rejects(openSqliteBackend({ dataDir: file }), ConfigError);
  await assert.rejects(openSqliteBackend({ dataDir: join(file, 'sub') }), ConfigError);
});

test('a database path that is a directory is a ConfigError', async (t) => {
  const dataDir = join(tempDir(t), 'data');
  mkdirSync(join(dataDir, DB_FILE_NAME), { recursive: true });
  await assert.rejects(openSqliteBackend({ dataDir }), ConfigError);
});

test('a read-only database is a ConfigError', async (t) => {
  const base = tempDir(t);
  const dataDir = join(base, 'data');
  const b = await openSqliteBackend({ dataDir });
  await b.put('k', 'v');
  await b.close();
  const path = join(dataDir, DB_FILE_NAME);
  chmodSync(path, 0o400);

  // root ignores file modes, so as root the check runs as `nobody` in a child process.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    chmodSync(base, 0o711);
    chownSync(dataDir, 65534, 65534);
    chownSync(path, 65534, 65534);
  }
  const probe = `
    const { openSqliteBackend } = await import(process.argv[1]);
    try { const b = await openSqliteBackend({ dataDir: process.argv[2], busyTimeoutMs: 100 }); await b.close(); console.log(JSON.stringify({ ok: true })); }
    catch (e) { console.log(JSON.stringify({ ok: false, name: e.name, code: e.code, message: e.message, hint: e.hint })); }`;
  const module = fileURLToPath(new URL('../../src/storage/sqlite.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe, module, dataDir], {
    encoding: 'utf8',
    timeout: 30_000,
    ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
  assert.equal(out.ok, false, r.stdout);
  assert.equal(out.name, 'ConfigError');
  assert.equal(out.code, 'ERR_POSTERN_CONFIG');
  assert.match(out.message, /for writing/);
  assert.match(out.hint, /owns the data directory/);
});

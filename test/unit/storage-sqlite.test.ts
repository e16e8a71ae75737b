import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import { AlreadyExistsError, ConfigError, ConflictError, NotFoundError, PosternError, ValidationError } from '../../src/core/errors.ts';
import type { Backend } from '../../src/storage/backend.ts';
import { DB_FILE_NAME, openSqliteBackend } from '../../src/storage/sqlite.ts';
import type { SqliteBackend, SqliteBackendOptions } from '../../src/storage/sqlite.ts';

const T0 = Date.parse('2026-03-01T12:00:00Z');

/** A clock that moves only when told. */
function fakeClock(start = T0) {
  let t = start;
  return {
    now: () => new Date(t),
    advance(ms: number) { t += ms; },
  };
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'postern-storage-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function open(t: TestContext, opts: Partial<SqliteBackendOptions> = {}): Promise<SqliteBackend> {
  const backend = await openSqliteBackend({ dataDir: join(tempDir(t), 'data'), ...opts });
  t.after(() => backend.close());
  return backend;
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

function hasCode(code: string) {
  return (err: unknown) => {
    assert.ok(err instanceof PosternError, `expected a PosternError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

test('put, get, update and delete an item', async (t) => {
  const b = await open(t);
  assert.equal(await b.get('users/alice'), undefined);

  const created = await b.put('users/alice', '{"name":"alice"}');
  assert.deepEqual(await b.get('users/alice'), created);
  assert.equal(created.expires, undefined);

  const updated = await b.update('users/alice', '{"name":"alice","v":2}');
  assert.ok(updated.revision > created.revision);
  assert.equal((await b.get('users/alice'))?.value, '{"name":"alice","v":2}');

  const overwritten = await b.put('users/alice', '{"v":3}');
  assert.ok(overwritten.revision > updated.revision);

  assert.equal(await b.delete('users/alice'), true);
  assert.equal(await b.get('users/alice'), undefined);
  assert.equal(await b.delete('users/alice'), false);
});

test('update of a missing key is NotFoundError and writes nothing', async (t) => {
  const b = await open(t);
  await assert.rejects(b.update('users/nobody', '{}'), NotFoundError);
  assert.equal(await b.get('users/nobody'), undefined);
});

test('create refuses a key that exists and keeps the old value', async (t) => {
  const b = await open(t);
  const first = await b.create('cas/serial', '1');
  await assert.rejects(b.create('cas/serial', '2'), (err: unknown) => {
    assert.ok(err instanceof AlreadyExistsError);
    assert.equal(err.code, 'ERR_POSTERN_ALREADY_EXISTS');
    assert.match(err.message, /cas\/serial/);
    return true;
  });
  assert.deepEqual(await b.get('cas/serial'), first);
});

test('compareAndSwap succeeds on the current revision and conflicts on a stale or missing one', async (t) => {
  const b = await open(t);
  const v1 = await b.create('users/bob', 'v1');
  const v2 = await b.compareAndSwap('users/bob', v1.revision, 'v2');
  assert.ok(v2.revision > v1.revision);
  assert.equal((await b.get('users/bob'))?.value, 'v2');

  await assert.rejects(b.compareAndSwap('users/bob', v1.revision, 'stale write'), ConflictError);
  assert.equal((await b.get('users/bob'))?.value, 'v2');

  await assert.rejects(b.compareAndSwap('users/ghost', 1, 'x'), ConflictError);
  assert.equal(await b.get('users/ghost'), undefined);
});

test('a key deleted and created again never gets back an old revision', async (t) => {
  const b = await open(t);
  const old = await b.create('k', 'a');
  await b.delete('k');
  const again = await b.create('k', 'b');
  assert.ok(again.revision > old.revision);
  // A writer holding the old revision must lose, even though the key exists again.
  await assert.rejects(b.compareAndSwap('k', old.revision, 'c'), ConflictError);
});

test('revisions grow across two connections to one database', async (t) => {
  const dataDir = join(tempDir(t), 'data');
  const a = await openSqliteBackend({ dataDir });
  t.after(() => a.close());
  const b = await openSqliteBackend({ dataDir });
  t.after(() => b.close());
  const revisions: number[] = [];
  for (let i = 0; i < 10; i++) {
    revisions.push((await (i % 2 ? a : b).put(`n/${i}`, String(i))).revision);
  }
  assert.deepEqual(revisions, [...revisions].sort((x, y) => x - y));
  assert.equal(new Set(revisions).size, revisions.length);
});

async function seedRange(b: Backend): Promise<void> {
  for (const k of ['a/b', 'a/b/1', 'a/b/2', 'a/b/3', 'a/b/3/x', 'a/bc', 'a/bc/1', 'a/b0', 'a/b.', 'b/1']) await b.put(k, k);
}

const keys = (items: { key: string }[]) => items.map((i) => i.key);

test('getRange reads the keys under a prefix in key order, and only those', async (t) => {
  const b = await open(t);
  await seedRange(b);
  const under = ['a/b/1', 'a/b/2', 'a/b/3', 'a/b/3/x'];
  assert.deepEqual(keys(await b.getRange('a/b')), under);
  assert.deepEqual(keys(await b.getRange('a/b/')), under);
  assert.deepEqual(keys(await b.getRange('a/bc')), ['a/bc/1']);
  assert.deepEqual(keys(await b.getRange('a/b/3')), ['a/b/3/x']);
  assert.deepEqual(keys(await b.getRange('a/nothing')), []);
  assert.deepEqual(keys(await b.getRange('')), ['a/b', 'a/b.', 'a/b/1', 'a/b/2', 'a/b/3', 'a/b/3/x', 'a/b0', 'a/bc', 'a/bc/1', 'b/1']);
  await assert.rejects(b.getRange('/a'), ValidationError);
});

test('getRange honours limit, reverse and an exclusive cursor', async (t) => {
  const b = await open(t);
  await seedRange(b);
  assert.deepEqual(keys(await b.getRange('a/b', { limit: 2 })), ['a/b/1', 'a/b/2']);
  assert.deepEqual(keys(await b.getRange('a/b', { limit: 0 })), []);
  assert.deepEqual(keys(await b.getRange('a/b', { reverse: true })), ['a/b/3/x', 'a/b/3', 'a/b/2', 'a/b/1']);
  assert.deepEqual(keys(await b.getRange('a/b', { reverse: true, limit: 1 })), ['a/b/3/x']);
  assert.deepEqual(keys(await b.getRange('a/b', { after: 'a/b/1' })), ['a/b/2', 'a/b/3', 'a/b/3/x']);
  assert.deepEqual(keys(await b.getRange('a/b', { after: 'a/b/3', reverse: true })), ['a/b/2', 'a/b/1']);
  // A cursor need not be a stored key (audit reads from a time that way).
  assert.deepEqual(keys(await b.getRange('a/b', { after: 'a/b/2~' })), ['a/b/3', 'a/b/3/x']);
  await assert.rejects(b.getRange('a/b', { limit: -1 }), ValidationError);
  await assert.rejects(b.getRange('a/b', { limit: 1.5 }), ValidationError);
});

test('getRange pages through a prefix with limit and cursor, both directions', async (t) => {
  const b = await open(t);
  const all: string[] = [];
  for (let i = 0; i < 23; i++) {
    const k = `audit/${String(i).padStart(4, '0')}`;
    all.push(k);
    await b.put(k, '{}');
  }
  await b.put('auditx/1', '{}');
  for (const reverse of [false, true]) {
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 10; page++) {
      const items = await b.getRange('audit', { limit: 5, reverse, after });
      if (items.length === 0) break;
      seen.push(...keys(items));
      after = items[items.length - 1].key;
    }
    assert.deepEqual(seen, reverse ? [...all].reverse() : all);
  }
});

test('deleteRange deletes under the prefix only and counts what it deleted', async (t) => {
  const b = await open(t);
  await seedRange(b);
  assert.equal(await b.deleteRange('a/b'), 4);
  assert.deepEqual(keys(await b.getRange('')), ['a/b', 'a/b.', 'a/b0', 'a/bc', 'a/bc/1', 'b/1']);
  assert.equal(await b.deleteRange('a/b'), 0);
  assert.equal(await b.deleteRange(''), 6);
  assert.deepEqual(await b.getRange(''), []);
});

test('an expired item is invisible to every read and gone for conditional writes', async (t) => {
  const clock = fakeClock();
  const b = await open(t, { clock, sweepIntervalMs: 0 });
  const expires = new Date(T0 + 10_000);
  const item = await b.put('tokens/t1', 'secret', { expires });
  assert.equal(item.expires?.getTime(), expires.getTime());
  await b.put('tokens/t2', 'forever');

  clock.advance(9_999);
  assert.equal((await b.get('tokens/t1'))?.expires?.getTime(), expires.getTime());
  assert.deepEqual(keys(await b.getRange('tokens')), ['tokens/t1', 'tokens/t2']);

  clock.advance(1); // expiry is inclusive: at `expires` the item is gone
  assert.equal(await b.get('tokens/t1'), undefined);
  assert.deepEqual(keys(await b.getRange('tokens')), ['tokens/t2']);
  await assert.rejects(b.update('tokens/t1', 'x'), NotFoundError);
  await assert.rejects(b.compareAndSwap('tokens/t1', item.revision, 'x'), ConflictError);
  assert.equal(await b.delete('tokens/t1'), false);

  // create may take the key of an expired item
  const again = await b.create('tokens/t1', 'new');
  assert.equal(again.expires, undefined);
  assert.equal((await b.get('tokens/t1'))?.value, 'new');
});

test('deleteRange does not count expired items', async (t) => {
  const clock = fakeClock();
  const b = await open(t, { clock, sweepIntervalMs: 0 });
  await b.put('s/1', 'a', { expires: new Date(T0 + 1000) });
  await b.put('s/2', 'b');
  clock.advance(1000);
  assert.equal(await b.deleteRange('s'), 1);
});

test('sweep deletes expired rows, on demand and on open', async (t) => {
  const clock = fakeClock();
  const dataDir = join(tempDir(t), 'data');
  const path = join(dataDir, DB_FILE_NAME);
  let b = await openSqliteBackend({ dataDir, clock, sweepIntervalMs: 0 });
  await b.put('w/1', 'a', { expires: new Date(T0 + 1000) });
  await b.put('w/2', 'b', { expires: new Date(T0 + 5000) });
  await b.put('w/3', 'c');
  clock.advance(1000);
  assert.equal(rawRowCount(path), 3);
  assert.equal(await b.sweep(), 1);
  assert.equal(rawRowCount(path), 2);

  await b.close();
  clock.advance(4000);
  b = await openSqliteBackend({ dataDir, clock, sweepIntervalMs: 0 });
  t.after(() => b.close());
  assert.equal(rawRowCount(path), 1);
  assert.deepEqual(keys(await b.getRange('w')), ['w/3']);
});

test('the periodic sweep deletes expired rows on its own', async (t) => {
  const clock = fakeClock();
  const dataDir = join(tempDir(t), 'data');
  const b = await openSqliteBackend({ dataDir, clock, sweepIntervalMs: 10 });
  t.after(() => b.close());
  await b.put('p/1', 'a', { expires: new Date(T0 + 1000) });
  clock.advance(1000);
  const path = join(dataDir, DB_FILE_NAME);
  for (let i = 0; i < 200 && rawRowCount(path) > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(rawRowCount(path), 0);
});

test('atomic applies every operation with one revision', async (t) => {
  const b = await open(t);
  const user = await b.create('users/carol', 'v1');
  await b.put('invites/x', 'pending');
  const rev = await b.atomic([
    { kind: 'cas', key: 'users/carol', expectedRevision: user.revision, value: 'v2' },
    { kind: 'create', key: 'users/dave', value: 'v1' },
    { kind: 'put', key: 'audit/1', value: '{}', expires: new Date(Date.now() + 60_000) },
    { kind: 'delete', key: 'invites/x' },
  ]);
  assert.equal((await b.get('users/carol'))?.revision, rev);
  assert.equal((await b.get('users/dave'))?.revision, rev);
  assert.ok((await b.get('audit/1'))?.expires);
  assert.equal(await b.get('invites/x'), undefined);
  assert.ok(rev > user.revision);
});

test('atomic rolls every operation back when one fails', async (t) => {
  const b = await open(t);
  const carol = await b.create('users/carol', 'v1');
  const invite = await b.put('invites/x', 'pending');

  // The first three operations would succeed; the fourth fails in a different way each time.
  const failing = [
    { kind: 'create', key: 'invites/y', value: 'dup' } as const,
    { kind: 'cas', key: 'users/zed', expectedRevision: 1, value: 'x' } as const,
    { kind: 'delete', key: 'invites/y', expectedRevision: carol.revision } as const,
  ];
  await b.put('invites/y', 'exists');
  const before = await b.getRange('');
  for (const last of failing) {
    await assert.rejects(b.atomic([
      { kind: 'put', key: 'users/erin', value: 'v1' },
      { kind: 'delete', key: 'users/carol' },
      { kind: 'cas', key: 'invites/x', expectedRevision: invite.revision, value: 'used' },
      last,
    ]), (err: unknown) => {
      assert.ok(err instanceof AlreadyExistsError || err instanceof ConflictError, String(err));
      assert.match((err as Error).message, /operation 4 of 4/);
      return true;
    });
    assert.deepEqual(await b.getRange(''), before, `after a batch ending in ${last.kind}`);
  }
  // A failed batch burns no revision.
  const next = await b.put('after', 'x');
  assert.equal(next.revision, Math.max(...before.map((i) => i.revision)) + 1);
});

test('atomic refuses an empty batch and a key named twice', async (t) => {
  const b = await open(t);
  await assert.rejects(b.atomic([]), ValidationError);
  await assert.rejects(b.atomic([
    { kind: 'put', key: 'k', value: '1' },
    { kind: 'delete', key: 'k' },
  ]), ValidationError);
  assert.equal(await b.get('k'), undefined);
});

test('bad keys, values and expiry dates are ValidationErrors', async (t) => {
  const b = await open(t);
  await assert.rejects(b.put('', 'x'), ValidationError);
  await assert.rejects(b.put('a//b', 'x'), ValidationError);
  await assert.rejects(b.get('a/'), ValidationError);
  await assert.rejects(b.put('a', 42 as unknown as string), ValidationError);
  await assert.rejects(b.put('a', 'x', { expires: new Date('nonsense') }), ValidationError);
  await assert.rejects(b.compareAndSwap('a', 'one' as unknown as number, 'x'), ValidationError);
});

test('close and reopen keeps the data, and revisions keep growing', async (t) => {
  const dataDir = join(tempDir(t), 'data');
  const first = await openSqliteBackend({ dataDir });
  await first.put('users/alice', 'a');
  const last = await first.put('users/bob', 'b', { expires: new Date(Date.now() + 3_600_000) });
  await first.close();
  await first.close(); // a second close is harmless
  await assert.rejects(first.get('users/alice'), hasCode('ERR_POSTERN_STORAGE_CLOSED'));

  const second = await openSqliteBackend({ dataDir });
  t.after(() => second.close());
  assert.equal((await second.get('users/alice'))?.value, 'a');
  assert.deepEqual(await second.get('users/bob'), last);
  assert.ok((await second.put('users/carol', 'c')).revision > last.revision);
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

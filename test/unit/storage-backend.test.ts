import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkKey, getJson, key, putJson, rangePrefix } from '../../src/storage/backend.ts';
import { openSqliteBackend } from '../../src/storage/sqlite.ts';
import { PosternError, ValidationError } from '../../src/core/errors.ts';

test('key() joins parts with "/"', () => {
  assert.equal(key('users', 'alice'), 'users/alice');
  assert.equal(key('audit', '000000000000001-ab12'), 'audit/000000000000001-ab12');
  assert.equal(key('one'), 'one');
});

test('key() rejects a part with "/" or an empty part', () => {
  assert.throws(() => key('users', 'a/b'), ValidationError);
  assert.throws(() => key('users', ''), ValidationError);
  assert.throws(() => key('', 'alice'), ValidationError);
  assert.throws(() => key(), ValidationError);
});

test('checkKey() refuses empty keys and empty parts', () => {
  checkKey('users/alice');
  for (const bad of ['', '/users', 'users/', 'users//alice']) {
    assert.throws(() => checkKey(bad), ValidationError, bad);
  }
});

test('rangePrefix() ends a prefix with "/" so "a/b" never covers "a/bc"', () => {
  assert.equal(rangePrefix('a/b'), 'a/b/');
  assert.equal(rangePrefix('a/b/'), 'a/b/');
  assert.equal(rangePrefix(''), '');
  assert.throws(() => rangePrefix('/'), ValidationError);
  assert.throws(() => rangePrefix('a//b'), ValidationError);
});

test('getJson and putJson round-trip a value and report corrupt JSON', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-storage-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const backend = await openSqliteBackend({ dataDir: join(dir, 'data') });
  t.after(() => backend.close());

  assert.equal(await getJson(backend, 'settings/cluster'), undefined);
  const item = await putJson(backend, 'settings/cluster', { ttl: 43200, logins: ['root'] });
  assert.equal(item.value, '{"ttl":43200,"logins":["root"]}');
  assert.deepEqual(await getJson<{ ttl: number }>(backend, 'settings/cluster'), { ttl: 43200, logins: ['root'] });

  await assert.rejects(putJson(backend, 'settings/nothing', undefined), ValidationError);
  await backend.put('settings/broken', '{not json');
  await assert.rejects(getJson(backend, 'settings/broken'), (err: unknown) => {
    assert.ok(err instanceof PosternError);
    assert.equal(err.code, 'ERR_POSTERN_STORAGE_CORRUPT');
    return true;
  });
});

test('putJson passes the expiry through', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-storage-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let now = Date.parse('2026-01-01T00:00:00Z');
  const backend = await openSqliteBackend({ dataDir: join(dir, 'data'), clock: { now: () => new Date(now) } });
  t.after(() => backend.close());
  await putJson(backend, 'tokens/t1', { kind: 'proxy' }, { expires: new Date(now + 1000) });
  assert.deepEqual(await getJson(backend, 'tokens/t1'), { kind: 'proxy' });
  now += 1000;
  assert.equal(await getJson(backend, 'tokens/t1'), undefined);
});

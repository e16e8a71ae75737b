/**
 * Choosing the store: `--storage`, `storage:` in the serve config and $POSTERN_STORAGE, in
 * that order, else SQLite in the data directory; and openBackend() opening what was chosen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/core/errors.ts';
import { describeStorage, openBackend, parseStorageSpec } from '../../src/storage/open.ts';
import { resolveServeConfig } from '../../src/cli/commands/serve-config.ts';

const PG = 'postgres://postern:s3cret@db.example:5432/postern?sslmode=verify-full';

test('no --storage keeps SQLite in the data directory; a postgres:// URL chooses PostgreSQL', () => {
  assert.deepEqual(parseStorageSpec(undefined, '/data'), { kind: 'sqlite', dataDir: '/data' });
  assert.deepEqual(parseStorageSpec('', '/data'), { kind: 'sqlite', dataDir: '/data' });
  assert.deepEqual(parseStorageSpec(PG, '/data'), { kind: 'postgres', url: PG });
  assert.deepEqual(parseStorageSpec('postgresql://u@h/d', '/data'), { kind: 'postgres', url: 'postgresql://u@h/d' });
  assert.equal(describeStorage({ kind: 'postgres', url: PG }), 'postgres://postern:***@db.example:5432/postern?sslmode=verify-full');
});

test('an unknown --storage is a ConfigError that does not repeat a password', () => {
  assert.throws(() => parseStorageSpec('mysql://root:s3cret@db/x', '/data'), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.doesNotMatch(err.message, /s3cret/);
    assert.match(err.hint ?? '', /postgres:\/\//);
    return true;
  });
});

test('serve takes --storage over storage: in the config file over $POSTERN_STORAGE', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-storage-open-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'serve.yaml');
  writeFileSync(file, 'storage: postgres://from-file@db/postern\n');
  const env = { POSTERN_STORAGE: 'postgres://from-env@db/postern' };
  assert.deepEqual(resolveServeConfig({}, '/data').storage, { kind: 'sqlite', dataDir: '/data' });
  assert.deepEqual(resolveServeConfig({}, '/data', env).storage, { kind: 'postgres', url: env.POSTERN_STORAGE });
  assert.deepEqual(resolveServeConfig({ config: file }, '/data', env).storage, { kind: 'postgres', url: 'postgres://from-file@db/postern' });
  assert.deepEqual(resolveServeConfig({ config: file, storage: PG }, '/data', env).storage, { kind: 'postgres', url: PG });
  // SQLite goes where the data directory is, wherever that came from.
  assert.deepEqual(resolveServeConfig({ dataDir: '/elsewhere' }, '/data').storage, { kind: 'sqlite', dataDir: '/elsewhere' });
});

test('a proxy alone refuses --storage but ignores $POSTERN_STORAGE', () => {
  const proxy = { roles: 'proxy', authServer: 'auth.example:3025' };
  assert.throws(() => resolveServeConfig({ ...proxy, storage: PG }, '/data'), /--storage is for the auth role/);
  resolveServeConfig(proxy, '/data', { POSTERN_STORAGE: PG });
});

test('openBackend opens SQLite in the data directory', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-storage-open-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const b = await openBackend({ kind: 'sqlite', dataDir: join(dir, 'data') });
  t.after(() => b.close());
  await b.put('k', 'v');
  assert.equal((await b.get('k'))?.value, 'v');
});

/**
 * The PostgreSQL backend on a real server (test/helpers/postgres.ts): the Backend contract
 * suite, unchanged, on a database per test; then what only a server-backed store has: a
 * server that cannot be reached, a database that does not exist, a schema from a newer
 * Postern, a database that holds someone else's table.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/core/errors.ts';
import { openPostgresBackend, redactUrl } from '../../src/storage/postgres.ts';
import { LATEST_PG_SCHEMA_VERSION } from '../../src/storage/postgres-migrations.ts';
import { hasCode, runBackendContract } from '../helpers/backend-contract.ts';
import { startPostgres } from '../helpers/postgres.ts';
import type { PostgresServer } from '../helpers/postgres.ts';

// One server for the file, started before any test is registered and stopped after the last.
const server: PostgresServer = await startPostgres({ after });
console.log(`# PostgreSQL started in ${server.startupMs} ms`);

runBackendContract({
  async newStore(t) {
    const url = await server.createDatabase(t);
    return {
      open: (opts = {}) => openPostgresBackend({ url, ...opts }),
      rawRowCount: async () => Number((await server.sql<{ n: string }>(url, 'SELECT count(*) AS n FROM postern_items'))[0].n),
    };
  },
});

test('a server that cannot be reached is ERR_POSTERN_STORAGE_UNAVAILABLE, with the place in the hint', async () => {
  // The test server's port once it is stopped would do too; a port nobody listens on is simpler.
  const url = `postgres://postern:secret@127.0.0.1:1/postern`;
  await assert.rejects(openPostgresBackend({ url, connectTimeoutMs: 2000 }), (err: unknown) => {
    hasCode('ERR_POSTERN_STORAGE_UNAVAILABLE')(err);
    const e = err as ConfigError;
    assert.match(e.message, /^the cluster's storage is unavailable/);
    assert.equal(e.status, 503);
    assert.match(e.hint ?? '', /127\.0\.0\.1:1/);
    assert.doesNotMatch(`${e.message} ${e.hint}`, /secret/);
    return true;
  });
});

test('a database that does not exist is a ConfigError that says how to create it', async () => {
  await assert.rejects(openPostgresBackend({ url: server.url('nonexistent') }), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /does not exist/);
    assert.match(err.hint ?? '', /createdb/);
    return true;
  });
});

test('a schema newer than this Postern is refused, and nothing is written', async (t) => {
  const url = await server.createDatabase(t);
  (await openPostgresBackend({ url })).close();
  await server.sql(url, "INSERT INTO postern_schema_version (version, description, applied_at) VALUES ($1, 'from the future', now())", [LATEST_PG_SCHEMA_VERSION + 1]);
  await assert.rejects(openPostgresBackend({ url }), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, new RegExp(`schema version ${LATEST_PG_SCHEMA_VERSION + 1}`));
    assert.match(err.hint ?? '', /upgrade Postern/);
    return true;
  });
  const rows = await server.sql(url, 'SELECT version FROM postern_schema_version ORDER BY version');
  assert.deepEqual(rows.map((r) => Number(r.version)), [...Array(LATEST_PG_SCHEMA_VERSION + 1).keys()].map((i) => i + 1));
});

test('a postern_items table without a schema version is not taken over', async (t) => {
  const url = await server.createDatabase(t);
  await server.sql(url, 'CREATE TABLE postern_items (id INTEGER)');
  await assert.rejects(openPostgresBackend({ url }), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /no schema version/);
    return true;
  });
});

test('opening twice migrates once, and a second backend sees the first one\'s writes', async (t) => {
  const url = await server.createDatabase(t);
  const a = await openPostgresBackend({ url });
  t.after(() => a.close());
  const b = await openPostgresBackend({ url });
  t.after(() => b.close());
  const item = await a.put('users/alice', 'a');
  assert.deepEqual(await b.get('users/alice'), item);
  const rows = await server.sql(url, 'SELECT version FROM postern_schema_version');
  assert.equal(rows.length, LATEST_PG_SCHEMA_VERSION);
});

test('a NUL character, which PostgreSQL cannot store, is a ValidationError', async (t) => {
  const b = await openPostgresBackend({ url: await server.createDatabase(t) });
  t.after(() => b.close());
  await assert.rejects(b.put('k', 'a\u0000b'), hasCode('ERR_POSTERN_INVALID'));
});

test('the password never appears in the location', () => {
  assert.equal(redactUrl('postgres://postern:s3cret@db.example:5432/postern?sslmode=verify-full'), 'postgres://postern:***@db.example:5432/postern?sslmode=verify-full');
  assert.doesNotMatch(redactUrl('postgres://u@h/d?password=s3cret&sslpassword=s3cret'), /s3cret/);
});

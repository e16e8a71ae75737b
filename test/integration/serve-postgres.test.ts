/**
 * `postern serve --storage postgres://…` as users run it, on a real PostgreSQL: two auth
 * servers (separate processes and data directories) started at the same moment on an
 * empty database, one by the flag and one by $POSTERN_STORAGE, come up with one cluster
 * CA; a user added through one is listed by the other; while PostgreSQL is down the CLI
 * says the cluster's storage is unavailable, and once it is back both work again without
 * a restart.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { runPostern } from '../helpers/cli.ts';
import { startServe } from '../helpers/serve.ts';
import { startPostgres } from '../helpers/postgres.ts';

const AUTH_ONLY = ['--roles', 'auth', '--auth-addr', '127.0.0.1:0', '--cluster-name', 'ha.example'];

test('two auth servers on one PostgreSQL: one CA, shared users, unavailable while it is down, back by themselves', async (t) => {
  const pg = await startPostgres({ after });
  const url = await pg.createDatabase(t);
  const [a, b] = await Promise.all([
    startServe({ args: [...AUTH_ONLY, '--storage', url] }),
    startServe({ args: AUTH_ONLY, env: { POSTERN_STORAGE: url } }),
  ]);
  t.after(async () => { await Promise.all([a.stop(), b.stop()]); });
  assert.equal(a.caPin, b.caPin, 'two auth servers made two cluster CAs');
  assert.match(a.ready, /storage=postgres:\/\/postgres@127\.0\.0\.1:\d+\//);
  assert.match(b.ready, /storage=postgres:\/\//);
  const caA = await runPostern(['ca', 'export', '--type', 'user', '--data-dir', a.dataDir]);
  const caB = await runPostern(['ca', 'export', '--type', 'user', '--data-dir', b.dataDir]);
  assert.equal(caA.code, 0, caA.stderr);
  assert.equal(caA.stdout, caB.stdout);

  const add = await runPostern(['users', 'add', 'alice', '--logins', 'root', '--data-dir', a.dataDir]);
  assert.equal(add.code, 0, add.stderr);
  const ls = await runPostern(['users', 'ls', '--data-dir', b.dataDir]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /^alice\s/m);

  await pg.crash();
  const down = await runPostern(['users', 'ls', '--data-dir', b.dataDir]);
  assert.equal(down.code, 1, down.stdout);
  assert.match(down.stderr, /^error: the cluster's storage is unavailable$/m);
  assert.match(down.stderr, /^hint: .*reconnects by itself/m);

  await pg.start();
  for (const serve of [a, b]) {
    const back = await runPostern(['users', 'ls', '--data-dir', serve.dataDir]);
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, /^alice\s/m);
  }
});

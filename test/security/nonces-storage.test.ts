/**
 * The nonce store (src/auth/nonces.ts) on both backends, two stores on one database as two
 * auth servers have them: of 50 claims of one nonce at once, spread over both, exactly one
 * wins and the rest are refused as replays, 30 times over; a nonce whose window ended can
 * be stored again (its timestamp is refused by then anyway). Through a real AuthServer, a
 * claim past the request window's bound is refused as invalid.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres } from '../helpers/postgres.ts';
import { openPostgresBackend } from '../../src/storage/postgres.ts';
import { openSqliteBackend } from '../../src/storage/sqlite.ts';
import type { Backend } from '../../src/storage/backend.ts';
import { claimNonce } from '../../src/auth/nonces.ts';
import { AuthServer, localAuthClient } from '../../src/auth/auth-server.ts';
import type { PosternError } from '../../src/core/errors.ts';
import { TEST_SCRYPT_LOG2N } from '../helpers/auth.ts';
import { waitFor } from '../helpers/wait.ts';

const ROUNDS = 30;
const AT_ONCE = 50;

async function race(stores: Backend[]): Promise<void> {
  for (let round = 0; round < ROUNDS; round++) {
    const nonce = randomBytes(16).toString('hex');
    const expires = new Date(Date.now() + 60_000);
    const results = await Promise.allSettled(Array.from({ length: AT_ONCE }, (_, i) => claimNonce(stores[i % stores.length], nonce, `u${i}`, expires)));
    const won = results.filter((r) => r.status === 'fulfilled').length;
    assert.equal(won, 1, `round ${round}: ${won} claims won`);
    for (const r of results) {
      if (r.status === 'rejected') assert.equal((r.reason as PosternError).code, 'ERR_POSTERN_REQUEST_AUTH', String(r.reason));
    }
  }
  // Expired: storable again.
  const nonce = randomBytes(16).toString('hex');
  await claimNonce(stores[0], nonce, 'a', new Date(Date.now() + 300));
  await assert.rejects(claimNonce(stores[1], nonce, 'a', new Date(Date.now() + 60_000)), /replayed nonce/);
  await waitFor(async () => { try { await claimNonce(stores[1], nonce, 'a', new Date(Date.now() + 60_000)); return true; } catch { return false; } }, { what: 'the expired nonce storable again', timeoutMs: 10_000 });
}

test(`SQLite: one of ${AT_ONCE} concurrent claims of a nonce wins, ${ROUNDS} rounds`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-nonces-'));
  const a = await openSqliteBackend({ dataDir: dir });
  const b = await openSqliteBackend({ dataDir: dir });
  t.after(async () => { await a.close(); await b.close(); });
  await race([a, b]);
});

test(`PostgreSQL: one of ${AT_ONCE} concurrent claims of a nonce over two pools wins, ${ROUNDS} rounds`, async (t) => {
  const pg = await startPostgres({ after });
  const url = await pg.createDatabase(t);
  const a = await openPostgresBackend({ url });
  const b = await openPostgresBackend({ url });
  t.after(async () => { await a.close(); await b.close(); });
  await race([a, b]);
});

test('the claimNonce call checks what a proxy sends', async (t) => {
  const backend = await openSqliteBackend({ dataDir: mkdtempSync(join(tmpdir(), 'postern-nonces-')) });
  t.after(() => backend.close());
  const auth = await AuthServer.open({ backend, clock: { now: () => new Date() }, clusterName: 'c.example', passwordCost: TEST_SCRYPT_LOG2N });
  const proxy = localAuthClient(auth, { role: 'proxy', name: 'p1' });
  const admin = localAuthClient(auth, { role: 'admin', name: 'admin' });
  const nonce = randomBytes(16).toString('hex');
  await proxy.claimNonce({ user: 'alice', nonce, clientAddr: '192.0.2.1', expiresAt: Date.now() + 60_000 });
  await assert.rejects(proxy.claimNonce({ user: 'alice', nonce, clientAddr: '192.0.2.1', expiresAt: Date.now() + 60_000 }), { status: 401 });
  await assert.rejects(proxy.claimNonce({ user: 'alice', nonce: 'XYZ', clientAddr: '', expiresAt: Date.now() + 60_000 }), { status: 400, message: /nonce must be/ });
  await assert.rejects(proxy.claimNonce({ user: 'alice', nonce: randomBytes(16).toString('hex'), clientAddr: '', expiresAt: Date.now() + 3_600_000 }), { status: 400, message: /expiresAt/ });
  await assert.rejects(admin.claimNonce({ user: 'alice', nonce: randomBytes(16).toString('hex'), clientAddr: '', expiresAt: Date.now() + 60_000 }), /a admin may not call claimNonce/);
});

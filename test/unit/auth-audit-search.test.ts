/**
 * The audit query with a limit reads the log backwards in pages and stops once it has the
 * newest matches (the fix for 1,000,000 events, docs/benchmarks.md): its answers are the
 * same as filtering the whole log and keeping the last `limit`, across page boundaries,
 * with `since`, `type` and `user`, on a real SQLite store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteBackend } from '../../src/storage/sqlite.ts';
import { emitAudit, searchAudit } from '../../src/auth/audit.ts';
import type { AuditFilter } from '../../src/auth/audit.ts';
import type { AuditEvent } from '../../src/api/audit.ts';

test('searchAudit with a limit returns the newest matches, oldest first, as a full scan would', async () => {
  const backend = await openSqliteBackend({ dataDir: mkdtempSync(join(tmpdir(), 'postern-audit-')), sweepIntervalMs: 0 });
  const t0 = Date.parse('2030-01-01T00:00:00Z');
  for (let i = 0; i < 5_000; i++) {
    const type = i % 3 === 0 ? 'user.login' : i % 3 === 1 ? 'session.start' : 'user.login.failure';
    await emitAudit(backend, { type: type as AuditEvent['type'], user: `u${i % 7}`, success: true, seq: i } as never, new Date(t0 + i * 1000));
  }
  const all = await searchAudit(backend, {});
  assert.equal(all.length, 5_000);
  const brute = (q: AuditFilter): AuditEvent[] => all.filter((e) => (!q.since || Date.parse(e.time) >= q.since.getTime())
    && (!q.type || e.type === q.type || e.type.startsWith(`${q.type}.`)) && (!q.user || e.user === q.user)).slice(-(q.limit ?? 0));
  const queries: AuditFilter[] = [
    { limit: 10 }, { limit: 2_500 }, { limit: 4_999 }, { limit: 6_000 },
    { limit: 50, user: 'u3' }, { limit: 900, user: 'u3', type: 'user.login' }, { limit: 5, type: 'session' },
    { limit: 3_000, since: new Date(t0 + 1_000_000) }, { limit: 20, since: new Date(t0 + 4_990_000), user: 'u1' },
    { limit: 1, user: 'nobody' },
  ];
  for (const q of queries) {
    const got = (await searchAudit(backend, q)).map((e) => (e as unknown as { seq: number }).seq);
    assert.deepEqual(got, brute(q).map((e) => (e as unknown as { seq: number }).seq), JSON.stringify(q));
  }
  await backend.close();
});

/**
 * PostgreSQL restarted in the middle of traffic (a crash: `pg_ctl stop -m immediate`, no
 * checkpoint, recovery on start). Writers keep going the whole time, each through atomic
 * batches of (new key, its own counter), through one backend that is never reopened, as a
 * running auth server would. While the server is down every call fails with
 * ERR_POSTERN_STORAGE_UNAVAILABLE; once it is back the same backend works again; and every
 * write that was acknowledged is there, with every batch whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PosternError } from '../../src/core/errors.ts';
import { openPostgresBackend } from '../../src/storage/postgres.ts';
import { startPostgres } from '../helpers/postgres.ts';

const WRITERS = 4;
const ACKS_BEFORE_CRASH = 100;
const ACKS_AFTER_RESTART = 200;

async function until(what: string, cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('PostgreSQL restarted mid-traffic: acknowledged writes survive, errors say unavailable, the backend recovers by itself', async (t) => {
  const server = await startPostgres(t);
  console.log(`# PostgreSQL started in ${server.startupMs} ms`);
  const url = await server.createDatabase();
  const b = await openPostgresBackend({ url, sweepIntervalMs: 0, connectTimeoutMs: 2000 });
  t.after(() => b.close());

  const acked: string[][] = Array.from({ length: WRITERS }, () => []);
  const errors: unknown[] = [];
  let phase: 'before' | 'down' | 'back' = 'before';
  let ackedBack = 0;
  let stop = false;

  const writer = async (w: number): Promise<void> => {
    const counterKey = `count/${w}`;
    let rev = (await b.create(counterKey, '0')).revision;
    let n = 0;
    let resync = false;
    while (!stop) {
      if (resync) {
        // A batch cut off by the crash may or may not have committed: the counter says which.
        try {
          const c = await b.get(counterKey);
          assert.ok(c);
          n = Number(c.value);
          rev = c.revision;
          resync = false;
        } catch (err) {
          errors.push(err);
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
      }
      const k = `data/${w}/${String(n).padStart(6, '0')}`;
      try {
        rev = await b.atomic([
          { kind: 'create', key: k, value: JSON.stringify({ w, n }) },
          { kind: 'cas', key: counterKey, expectedRevision: rev, value: String(n + 1) },
        ]);
        acked[w].push(k);
        n++;
        if (phase === 'back') ackedBack++;
      } catch (err) {
        errors.push(err);
        resync = true;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  const total = (): number => acked.reduce((s, a) => s + a.length, 0);
  const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
  try {
    await until(`${ACKS_BEFORE_CRASH} writes were acknowledged`, () => total() >= ACKS_BEFORE_CRASH);
    const t0 = performance.now();
    await server.crash();
    phase = 'down';
    const ackedAtCrash = total();
    const failedAtCrash = errors.length;
    // Calls keep failing while the server is down, each quickly (no hang).
    await until('calls failed with the server down', () => errors.length >= failedAtCrash + 5 * WRITERS);
    assert.equal(total(), ackedAtCrash, 'a write was acknowledged with the server down');
    await server.start();
    phase = 'back';
    await until(`${ACKS_AFTER_RESTART} writes were acknowledged after the restart`, () => ackedBack >= ACKS_AFTER_RESTART);
    console.log(`# down and back in ${Math.round(performance.now() - t0)} ms; ${errors.length} calls failed meanwhile`);
  } finally {
    stop = true;
    await Promise.allSettled(writers);
  }
  await Promise.all(writers);

  for (const err of errors) {
    assert.ok(err instanceof PosternError, `not a PosternError: ${String(err)}`);
    assert.equal(err.code, 'ERR_POSTERN_STORAGE_UNAVAILABLE', `${err.code}: ${err.message} (${String(err.cause)})`);
    assert.equal(err.status, 503);
  }
  for (let w = 0; w < WRITERS; w++) {
    const stored = (await b.getRange(`data/${w}`)).map((i) => i.key);
    const missing = acked[w].filter((k) => !stored.includes(k));
    assert.deepEqual(missing, [], `writer ${w}: acknowledged writes lost`);
    // Every batch is whole: the counter matches the keys written, acknowledged or not.
    assert.equal((await b.get(`count/${w}`))?.value, String(stored.length), `writer ${w}`);
  }
});

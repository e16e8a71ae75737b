/**
 * The Backend contract as tests: one suite that every backend must pass unchanged
 * (test/unit/storage-sqlite.test.ts runs it on SQLite, test/unit/storage-postgres.test.ts
 * on a real PostgreSQL). What only one backend has (file modes, a locked file, a server
 * that goes away) stays in that backend's own test file.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Clock } from '../../src/core/clock.ts';
import { AlreadyExistsError, ConflictError, NotFoundError, PosternError, ValidationError } from '../../src/core/errors.ts';
import type { Backend } from '../../src/storage/backend.ts';

/** A backend under test: the contract plus sweeping on demand. */
export interface ContractBackend extends Backend {
  sweep(): Promise<number>;
}

/** How the suite opens a backend. */
export interface ContractOpenOptions {
  clock?: Clock;
  /** 0 turns the periodic sweep off. */
  sweepIntervalMs?: number;
}

/** One empty store (a data directory, a database) that can be opened several times at once. */
export interface ContractStore {
  /** Opens a backend on this store; the caller closes it. */
  open(opts?: ContractOpenOptions): Promise<ContractBackend>;
  /** Rows stored, expired or not, read behind the backend's back. */
  rawRowCount(): Promise<number>;
}

/** What a backend's test file provides. */
export interface ContractTarget {
  /** A new, empty store, removed at the end of the test. */
  newStore(t: TestContext): Promise<ContractStore>;
}

/** The fixed start of fake clocks. */
export const T0 = Date.parse('2026-03-01T12:00:00Z');

/** A clock that moves only when told. */
export function fakeClock(start = T0) {
  let t = start;
  return {
    now: () => new Date(t),
    advance(ms: number) { t += ms; },
  };
}

/** An assertion for rejects(): a PosternError with this code. */
export function hasCode(code: string) {
  return (err: unknown) => {
    assert.ok(err instanceof PosternError, `expected a PosternError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

/** Registers every contract test against a target. */
export function runBackendContract(target: ContractTarget): void {
  async function open(t: TestContext, opts: ContractOpenOptions = {}): Promise<ContractBackend> {
    const store = await target.newStore(t);
    const backend = await store.open(opts);
    t.after(() => backend.close());
    return backend;
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
    const store = await target.newStore(t);
    const a = await store.open();
    t.after(() => a.close());
    const b = await store.open();
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

  test('keys sort bytewise by their UTF-8 encoding, whatever the database\'s collation', async (t) => {
    const b = await open(t);
    // Natural-language collations put 'a' before 'B'; UTF-16 order puts U+1F600 before U+FF21.
    const sorted = ['s/B', 's/Z', 's/a', 's/b', 's/é', 's/€', 's/\uFF21', 's/\u{1F600}'];
    for (const k of [...sorted].reverse()) await b.put(k, k);
    assert.deepEqual(keys(await b.getRange('s')), sorted);
    assert.deepEqual(keys(await b.getRange('s', { reverse: true })), [...sorted].reverse());
    assert.deepEqual(keys(await b.getRange('s', { after: 's/a', limit: 2 })), ['s/b', 's/é']);
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
    const store = await target.newStore(t);
    let b = await store.open({ clock, sweepIntervalMs: 0 });
    await b.put('w/1', 'a', { expires: new Date(T0 + 1000) });
    await b.put('w/2', 'b', { expires: new Date(T0 + 5000) });
    await b.put('w/3', 'c');
    clock.advance(1000);
    assert.equal(await store.rawRowCount(), 3);
    assert.equal(await b.sweep(), 1);
    assert.equal(await store.rawRowCount(), 2);

    await b.close();
    clock.advance(4000);
    b = await store.open({ clock, sweepIntervalMs: 0 });
    t.after(() => b.close());
    assert.equal(await store.rawRowCount(), 1);
    assert.deepEqual(keys(await b.getRange('w')), ['w/3']);
  });

  test('the periodic sweep deletes expired rows on its own', async (t) => {
    const clock = fakeClock();
    const store = await target.newStore(t);
    const b = await store.open({ clock, sweepIntervalMs: 10 });
    t.after(() => b.close());
    await b.put('p/1', 'a', { expires: new Date(T0 + 1000) });
    clock.advance(1000);
    for (let i = 0; i < 200 && await store.rawRowCount() > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(await store.rawRowCount(), 0);
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
    const store = await target.newStore(t);
    const first = await store.open();
    await first.put('users/alice', 'a');
    const last = await first.put('users/bob', 'b', { expires: new Date(Date.now() + 3_600_000) });
    await first.close();
    await first.close(); // a second close is harmless
    await assert.rejects(first.get('users/alice'), hasCode('ERR_POSTERN_STORAGE_CLOSED'));

    const second = await store.open();
    t.after(() => second.close());
    assert.equal((await second.get('users/alice'))?.value, 'a');
    assert.deepEqual(await second.get('users/bob'), last);
    assert.ok((await second.put('users/carol', 'c')).revision > last.revision);
  });

}

/**
 * The proxy's registry of live connections (src/proxy/live-conns.ts) with a small auth of
 * our own: which connections a sweep ends and with what message, one question per distinct
 * connection, answers kept for a while, nothing cut when auth cannot answer, the audit of
 * each cut, and the sweep by its own timer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveConnections } from '../../src/proxy/live-conns.ts';
import type { AccountCheck, AccountCheckResult } from '../../src/api/auth-client.ts';
import type { NewAuditEvent } from '../../src/api/audit.ts';

function fakeAuth(decide: (c: AccountCheck) => AccountCheckResult | Error) {
  const asked: AccountCheck[] = [];
  const audited: NewAuditEvent[] = [];
  return {
    asked, audited,
    auth: {
      checkAccount: async (c: AccountCheck): Promise<AccountCheckResult> => {
        asked.push(c);
        const r = decide(c);
        if (r instanceof Error) throw r;
        return r;
      },
      emitAudit: async (e: NewAuditEvent): Promise<void> => { audited.push(e); },
    },
  };
}

function conn(over: Partial<Parameters<LiveConnections['add']>[0]> = {}) {
  const closed: string[] = [];
  return { closed, c: { user: 'alice', account: 'g1', login: 'root', node: 'web1', via: 'subsystem', clientAddr: '192.0.2.1', close: (m: string) => closed.push(m), ...over } };
}

test('a sweep ends the connections auth now refuses, with the reason, audited; others stay', async () => {
  let t = 0;
  const f = fakeAuth((c) => (c.node === 'web1' ? { valid: false, locked: true, reason: 'node web1 is locked: patching' } : { valid: true }));
  const live = new LiveConnections(f.auth, { clock: { now: () => new Date(t) }, intervalMs: 3_600_000 });
  const a = conn();
  const b = conn({ node: 'web2' });
  const w = conn({ account: undefined, webSessionId: 's1', login: 'root', via: 'web' });
  live.add(a.c);
  live.add(b.c);
  live.add(w.c);
  assert.equal(await live.sweep(), 2);
  assert.deepEqual(a.closed, ['session terminated: node web1 is locked: patching']);
  assert.deepEqual(w.closed, a.closed);
  assert.deepEqual(b.closed, []);
  assert.equal(live.size(), 1);
  assert.deepEqual(f.asked.find((q) => q.sessionId)?.sessionId, 's1');
  assert.equal(f.audited.length, 2);
  assert.deepEqual(f.audited.map((e) => [e.type, e.user, e.node, e.locked, e.reason]), [
    ['session.terminated', 'alice', 'web1', true, 'node web1 is locked: patching'], ['session.terminated', 'alice', 'web1', true, 'node web1 is locked: patching'],
  ]);
  // An ended connection is never ended twice.
  t += 10_000;
  assert.equal(await live.sweep(), 0);
  assert.equal(a.closed.length, 1);
  live.close();
});

test('one question per distinct connection, kept 2 s; a login unknown asks with the certificate\'s logins', async () => {
  let t = 0;
  const f = fakeAuth(() => ({ valid: true }));
  const live = new LiveConnections(f.auth, { clock: { now: () => new Date(t) }, intervalMs: 3_600_000 });
  for (let i = 0; i < 10; i++) live.add(conn().c);
  live.add(conn({ login: undefined, principals: ['root', 'alice'] }).c);
  await live.sweep();
  assert.equal(f.asked.length, 2);
  assert.deepEqual(f.asked[1], { user: 'alice', account: 'g1', principals: ['alice', 'root'], node: 'web1' });
  t += 1_000;
  await live.sweep();
  assert.equal(f.asked.length, 2, 'answers are kept');
  t += 1_500;
  await live.sweep();
  assert.equal(f.asked.length, 4, 'and asked again once old');
  live.close();
});

test('when auth cannot answer, live connections stay open', async () => {
  const f = fakeAuth(() => new Error('ECONNREFUSED'));
  const live = new LiveConnections(f.auth, { intervalMs: 3_600_000 });
  const a = conn();
  live.add(a.c);
  assert.equal(await live.sweep(), 0);
  assert.deepEqual(a.closed, []);
  assert.equal(live.size(), 1);
  live.close();
});

test('a reset (not a lock) is said as auth says it; a close that throws does not stop the sweep', async () => {
  const f = fakeAuth((c) => (c.user === 'bob' ? { valid: false, reason: 'the account was reset or re-created since this certificate was issued' } : { valid: true }));
  const live = new LiveConnections(f.auth, { intervalMs: 3_600_000 });
  const bad = { ...conn({ user: 'bob' }).c, close: () => { throw new Error('boom'); } };
  const bob = conn({ user: 'bob', node: 'web2' });
  live.add(bad);
  live.add(bob.c);
  assert.equal(await live.sweep(), 2);
  assert.deepEqual(bob.closed, ['session terminated: the account was reset or re-created since this certificate was issued']);
  assert.equal(f.audited.every((e) => e.locked === false), true);
  live.close();
});

test('a joiner\'s registration: the cut removes them from that session, says so, tells whether a lock is why, and audits the session', async () => {
  const f = fakeAuth((c) => (c.user === 'carol' ? { valid: false, locked: true, reason: 'user carol is locked: left' } : c.user === 'dave' ? { valid: false, reason: 'the account no longer exists' } : { valid: true }));
  const live = new LiveConnections(f.auth, { intervalMs: 3_600_000 });
  const whys: Array<{ locked: boolean }> = [];
  const joinOf = (user: string) => {
    const closed: string[] = [];
    live.add({ user, account: 'g2', login: 'root', node: 'web1', via: 'join', sessionId: 'sess-0001', ends: 'removed from session sess-0001', close: (m, why) => { closed.push(m); whys.push(why); } });
    return closed;
  };
  const carol = joinOf('carol');
  const dave = joinOf('dave');
  const owner = conn();
  live.add(owner.c);
  assert.equal(await live.sweep(), 2);
  assert.deepEqual(carol, ['removed from session sess-0001: user carol is locked: left']);
  assert.deepEqual(dave, ['removed from session sess-0001: the account no longer exists']);
  assert.deepEqual(whys, [{ locked: true }, { locked: false }]);
  assert.deepEqual(owner.closed, [], 'the owner\'s connection stays');
  assert.deepEqual(f.asked.find((q) => q.user === 'carol'), { user: 'carol', account: 'g2', login: 'root', node: 'web1' });
  assert.deepEqual(f.audited.map((e) => [e.user, e.via, e.sessionId, e.locked, e.message]), [
    ['carol', 'join', 'sess-0001', true, 'removed from session sess-0001: user carol is locked: left'],
    ['dave', 'join', 'sess-0001', false, 'removed from session sess-0001: the account no longer exists'],
  ]);
  live.close();
});

test('while connections are open, the registry sweeps by itself', async () => {
  const f = fakeAuth(() => ({ valid: false, locked: true, reason: 'user alice is locked' }));
  const live = new LiveConnections(f.auth, { intervalMs: 20 });
  const a = conn();
  const remove = live.add(a.c);
  // Polls for the cut (the registry's own timer makes it); a deadline, no fixed wait.
  const deadline = Date.now() + 10_000;
  while (a.closed.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(a.closed, ['session terminated: user alice is locked']);
  remove();
  assert.equal(live.size(), 0);
});

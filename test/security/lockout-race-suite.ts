/**
 * The lockout under parallel guesses, against two real AuthServers that
 * share one database (SQLite: lockout-race.test.ts; PostgreSQL: lockout-race-postgres.test.ts):
 * 100 simultaneous wrong passwords evaluate at most `lockout_attempts` of them (counted by
 * the hook called just before each scrypt, and by the audit log); in a burst of 99 wrong
 * guesses and the right one (second factor off) the right one is refused once the name is
 * locked, and where the database serves requests in order (SQLite) it is always refused;
 * the limit holds with two auth servers on two handles of one database. Each race runs 30 times.
 * Not a test file itself: each backend's file calls {@link lockoutRaceSuite}.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend } from '../../src/storage/backend.ts';
import { AuthServer, localAuthClient } from '../../src/auth/auth-server.ts';
import type { AuthClient } from '../../src/api/auth-client.ts';
import { searchAudit } from '../../src/auth/audit.ts';
import { generateKeyPair, formatAuthorizedKey } from '../../src/ssh/keys.ts';
import { systemClock } from '../../src/core/clock.ts';
import { TEST_SCRYPT_LOG2N } from '../helpers/auth.ts';

/** The race tests, with two auth servers on two handles that `open` gives of one database. */
export function lockoutRaceSuite(backendName: string, open: () => Promise<Backend>, inOrder: boolean): void {
  const PASSWORD = 'correct horse battery staple';
  const LIMIT = 5;
  const RUNS = 30;
  const publicKey = formatAuthorizedKey(generateKeyPair().publicWire, 'k');

  const backends: Backend[] = [];
  const checks = new Map<string, number>();
  const count = (user: string): void => { checks.set(user, (checks.get(user) ?? 0) + 1); };
  let admin: AuthClient;
  let proxyA: AuthClient;
  let proxyB: AuthClient;

  before(async () => {
    // Two auth servers, each with its own handle on the one database, as two processes would have.
    for (let i = 0; i < 2; i++) backends.push(await open());
    // The tests' scrypt cost, as every test's AuthServer has: what is counted is which guesses reach
    // the check (slots are taken before it), not how long one takes; the full cost made each file
    // spend about a minute hashing.
    const a = await AuthServer.open({ backend: backends[0], clock: systemClock, clusterName: 'race.example', onPasswordCheck: count, passwordCost: TEST_SCRYPT_LOG2N });
    const b = await AuthServer.open({ backend: backends[1], clock: systemClock, clusterName: 'race.example', onPasswordCheck: count, passwordCost: TEST_SCRYPT_LOG2N });
    admin = localAuthClient(a, { role: 'admin', name: 'admin' });
    proxyA = localAuthClient(a, { role: 'proxy', name: 'p1' });
    proxyB = localAuthClient(b, { role: 'proxy', name: 'p2' });
    // No throttle here: this is about the lockout alone (the throttle has its own test).
    await admin.updateSettings({ second_factor: 'off', lockout_attempts: LIMIT, login_rate_per_source: 0, login_rate_per_user: 0 });
  });

  after(async () => {
    for (const b of backends) await b.close();
  });

  /** A signed-up user with PASSWORD. */
  async function newUser(name: string): Promise<void> {
    const inv = await admin.createUser({ name, logins: ['ubuntu'], roles: ['access'], inviteTtlMs: 3_600_000 });
    const token = inv.inviteUrl.split('/').pop()!;
    await proxyA.acceptInvite({ token, password: PASSWORD, clientAddr: '192.0.2.1' });
  }

  const login = (via: AuthClient, user: string, password: string) => via.loginSsh({ user, password, publicKey, clientAddr: '192.0.2.9' });

  test(`100 simultaneous wrong passwords evaluate at most ${LIMIT}, ${RUNS} times over, across two auth servers on ${backendName}`, async () => {
    const evaluated: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const user = `race${run}`;
      await newUser(user);
      const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => login(i % 2 ? proxyB : proxyA, user, `wrong password ${i}`)));
      assert.ok(results.every((r) => r.status === 'rejected'), 'no wrong password logs in');
      const codes = results.map((r) => (r as PromiseRejectedResult).reason.code as string);
      const n = checks.get(user) ?? 0;
      evaluated.push(n);
      assert.ok(n <= LIMIT, `run ${run}: ${n} passwords were evaluated, the limit is ${LIMIT}`);
      assert.equal(codes.filter((c) => c === 'ERR_POSTERN_BAD_CREDENTIALS').length, n, 'each evaluated guess is a bad-credentials answer');
      assert.equal(codes.filter((c) => c === 'ERR_POSTERN_USER_LOCKED').length, 100 - n, 'the rest are refused as locked before any check');
      // The audit log agrees: as many "wrong password" events as checks, and the rest say "user is locked".
      const failures = await searchAudit(backends[0], { type: 'user.login.failure', user });
      assert.equal(failures.filter((e) => e.message === 'wrong password').length, n);
      // Locked now: the right password is refused too, without a check.
      await assert.rejects(login(proxyA, user, PASSWORD), { code: 'ERR_POSTERN_USER_LOCKED' });
      assert.equal(checks.get(user), n);
    }
    console.log(`# passwords evaluated per 100 parallel guesses (limit ${LIMIT}): ${evaluated.join(',')}`);
    // The slots are taken by the first guesses, so the limit is reached, not just respected.
    assert.ok(evaluated.every((n) => n === LIMIT), `each run evaluates exactly ${LIMIT}: ${evaluated.join(',')}`);
  });

  test(`a burst of 99 wrong guesses and the right one: at most ${LIMIT} checks, and the right one is refused once locked, ${RUNS} times over`, async () => {
    let rightIn = 0;
    for (let run = 0; run < RUNS; run++) {
      const user = `burst${run}`;
      await newUser(user);
      const wrong = Array.from({ length: 99 }, (_, i) => login(i % 2 ? proxyB : proxyA, user, `wrong password ${i}`));
      const right = login(run % 2 ? proxyB : proxyA, user, PASSWORD);
      const results = await Promise.allSettled([...wrong, right]);
      const inNow = results[99].status === 'fulfilled';
      if (inNow) rightIn++;
      // The right one sent last is one of the first LIMIT checks only if the database served it early; SQLite serves in order.
      if (inOrder) assert.equal(inNow, false, `run ${run}: the right password logged in during the burst`);
      // A success frees the slots (as it should), so LIMIT more may follow it; without one, LIMIT is all.
      assert.ok((checks.get(user) ?? 0) <= (inNow ? 2 * LIMIT : LIMIT), `run ${run}: ${checks.get(user)} checks`);
      assert.equal(results.slice(0, 99).filter((r) => r.status === 'fulfilled').length, 0);
      if (!inNow) {
        assert.equal((results[99] as PromiseRejectedResult).reason.code, 'ERR_POSTERN_USER_LOCKED');
        // Locked: the right password is refused without a check.
        const before = checks.get(user);
        await assert.rejects(login(proxyA, user, PASSWORD), { code: 'ERR_POSTERN_USER_LOCKED' });
        assert.equal(checks.get(user), before);
      }
    }
    console.log(`# ${backendName}: the right password, sent after 99 wrong ones at once, got in ${rightIn} of ${RUNS} times (among the first ${LIMIT} checks)`);
  });

  test('a success releases the slots, and a reset clears a lock', async () => {
    await newUser('carol');
    for (let i = 0; i < LIMIT - 1; i++) await assert.rejects(login(proxyA, 'carol', 'nope nope nope'), { code: 'ERR_POSTERN_BAD_CREDENTIALS' });
    const ok = await login(proxyB, 'carol', PASSWORD);
    assert.equal(ok.user, 'carol');
    // The failures are forgotten: LIMIT - 1 more wrong ones still do not lock.
    for (let i = 0; i < LIMIT - 1; i++) await assert.rejects(login(proxyA, 'carol', 'nope nope nope'), { code: 'ERR_POSTERN_BAD_CREDENTIALS' });
    assert.equal((await login(proxyA, 'carol', PASSWORD)).user, 'carol');
    // Lock, then reset: the lock is gone (the account waits for sign-up again).
    for (let i = 0; i < LIMIT; i++) await assert.rejects(login(proxyA, 'carol', 'nope nope nope'), { code: 'ERR_POSTERN_BAD_CREDENTIALS' });
    assert.equal((await admin.listUsers()).find((u) => u.name === 'carol')?.status, 'locked');
    await admin.resetUser({ name: 'carol', inviteTtlMs: 3_600_000 });
    assert.equal((await admin.listUsers()).find((u) => u.name === 'carol')?.status, 'invited');
  });
}

/**
 * The proxy's account check (cluster-info.ts): an answer of auth's checkAccount is kept at
 * most ACCOUNT_CHECK_MAX_AGE_MS, so a reset bites within it; when auth cannot answer and no
 * fresh answer is kept, the certificate is refused (fail closed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterInfoSource, ACCOUNT_CHECK_MAX_AGE_MS, ACCOUNT_EXTENSION } from '../../src/proxy/cluster-info.ts';
import type { ClusterInfoAuth } from '../../src/api/proxy-auth.ts';
import type { SshCertificate } from '../../src/ssh/certs.ts';

const cert = (user: string, account?: string): SshCertificate => ({ keyId: user, extensions: account ? { [ACCOUNT_EXTENSION]: account } : {} }) as unknown as SshCertificate;

function source(answer: () => Promise<{ valid: boolean; reason?: string }>): { src: ClusterInfoSource; asked: () => number; clock: { t: number } } {
  let asked = 0;
  const clock = { t: 1_000_000 };
  const auth: ClusterInfoAuth = {
    ping: () => Promise.reject(new Error('not used')),
    checkAccount: (req) => { asked++; assert.equal(typeof req.account, 'string'); return answer(); },
  };
  return { src: new ClusterInfoSource(auth, { clock: { now: () => new Date(clock.t) } }), asked: () => asked, clock };
}

test(`an answer is kept under ${ACCOUNT_CHECK_MAX_AGE_MS} ms, then asked again: a reset bites within that`, async () => {
  let valid = true;
  const { src, asked, clock } = source(async () => ({ valid, ...(valid ? {} : { reason: 'the account was reset' }) }));
  await src.checkAccount(cert('alice', 'g1'));
  await src.checkAccount(cert('alice', 'g1'));
  assert.equal(asked(), 1);
  valid = false; // users reset alice
  clock.t += ACCOUNT_CHECK_MAX_AGE_MS - 1;
  await src.checkAccount(cert('alice', 'g1'));
  clock.t += 1;
  await assert.rejects(src.checkAccount(cert('alice', 'g1')), { code: 'ERR_POSTERN_ACCOUNT_REVOKED', status: 401 });
  assert.equal(asked(), 2);
  // Another generation of the same name is another question.
  await assert.rejects(src.checkAccount(cert('alice', 'g2')), /the account was reset/);
  assert.equal(asked(), 3);
});

test('auth unreachable: refused unless a fresh answer is kept (fail closed)', async () => {
  let down = false;
  const { src, clock } = source(async () => { if (down) throw new Error('connect ECONNREFUSED'); return { valid: true }; });
  await src.checkAccount(cert('bob', 'g'));
  down = true;
  await src.checkAccount(cert('bob', 'g')); // fresh: still in
  await assert.rejects(src.checkAccount(cert('carol', 'g')), { code: 'ERR_POSTERN_ACCOUNT_REVOKED' });
  clock.t += ACCOUNT_CHECK_MAX_AGE_MS;
  await assert.rejects(src.checkAccount(cert('bob', 'g')), /cannot check the account of "bob" with auth/);
});

test('checks that arrive at once share one question to auth', async () => {
  const { src, asked } = source(async () => ({ valid: true }));
  await Promise.all(Array.from({ length: 50 }, () => src.checkAccount(cert('dora'))));
  assert.equal(asked(), 1);
});

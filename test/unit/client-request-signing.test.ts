/**
 * Web API request signatures: the client's signRequest (src/client/request-signing.ts)
 * against the proxy's CertAuthenticator (src/proxy/cert-auth.ts), with real certificates
 * signed by src/ssh/certs.ts. Each tampering is refused with a 401 saying why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { signRequest, signedRequestText, requestSigner } from '../../src/client/request-signing.ts';
import { CertAuthenticator, parseCertAuthHeader, parseNodesQuery, MAX_SKEW_MS } from '../../src/proxy/cert-auth.ts';
import { generateKeyPair, formatAuthorizedKey, verifySsh } from '../../src/ssh/keys.ts';
import type { SshKeyPair } from '../../src/ssh/keys.ts';
import { signCertificate } from '../../src/ssh/certs.ts';
import type { SshCertificate } from '../../src/ssh/certs.ts';
import type { PosternError } from '../../src/core/errors.ts';
import type { ClusterInfo } from '../../src/api/auth-types.ts';
import { NonceReplayError } from '../../src/auth/nonces.ts';

const T0 = new Date('2030-01-01T12:00:00Z');
const userCa = generateKeyPair();
const hostCa = generateKeyPair();

function userCert(subject: SshKeyPair, opts: { ca?: SshKeyPair; type?: 'user' | 'host'; ttlMs?: number; now?: Date } = {}): SshCertificate {
  return signCertificate(opts.ca ?? userCa, {
    type: opts.type ?? 'user', subjectPublicKey: subject.publicWire, keyId: 'alice', principals: ['ubuntu'], ttlMs: opts.ttlMs ?? 3600_000, serial: 7n, now: opts.now ?? T0,
  });
}

/**
 * A proxy-side authenticator whose auth answers ping with our user CA (counting pings) and
 * keeps nonces as auth does, until their expiry (the storage-backed store and its limits are
 * tested against a real auth in test/security/nonces.test.ts).
 */
function authenticator(now: { t: Date }): { ca: CertAuthenticator; pings: () => number; claims: Array<{ user: string; clientAddr: string; expiresAt: number }> } {
  let pings = 0;
  const ping = async (): Promise<ClusterInfo> => {
    pings++;
    return { clusterName: 'test.example', secondFactor: 'off', userCaKeys: [formatAuthorizedKey(userCa.publicWire)], hostCaKeys: [formatAuthorizedKey(hostCa.publicWire)], serverVersion: 't', sessionRecording: 'off' };
  };
  const nonces = new Map<string, number>();
  const claims: Array<{ user: string; clientAddr: string; expiresAt: number }> = [];
  const claimNonce = async (req: { user: string; nonce: string; clientAddr: string; expiresAt: number }): Promise<void> => {
    const seen = nonces.get(req.nonce);
    if (seen !== undefined && seen > now.t.getTime()) throw new NonceReplayError();
    nonces.set(req.nonce, req.expiresAt);
    claims.push({ user: req.user, clientAddr: req.clientAddr, expiresAt: req.expiresAt });
  };
  return { ca: new CertAuthenticator({ auth: { ping, checkAccount: async () => ({ valid: true }), claimNonce }, clock: { now: () => now.t } }), pings: () => pings, claims };
}

async function refused(p: Promise<unknown>, re: RegExp, code = 'ERR_POSTERN_REQUEST_AUTH'): Promise<void> {
  await assert.rejects(p, (err: PosternError) => {
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, 401);
    assert.equal(err.exitCode, 4);
    assert.match(err.message, re);
    return true;
  });
}

const PATH = '/webapi/nodes?labels=env%3Dprod&search=web';

test('a signed request is accepted and names the certificate\'s user', async () => {
  const key = generateKeyPair();
  const cert = userCert(key);
  const { ca } = authenticator({ t: T0 });
  const header = signRequest({ keyPair: key, certificate: cert.raw, method: 'GET', pathAndQuery: PATH, now: T0 });
  assert.match(header, /^Postern-Cert cert=[A-Za-z0-9+/=]+,ts=\d+,nonce=[0-9a-f]{32},sig=[A-Za-z0-9+/=]+$/);
  const caller = await ca.authenticate('GET', PATH, header);
  assert.equal(caller.user, 'alice');
  assert.deepEqual(caller.principals, ['ubuntu']);
  // The signature is an ordinary SSH signature over the documented text.
  const h = parseCertAuthHeader(header);
  assert.ok(verifySsh(key.publicWire, Buffer.from(signedRequestText('GET', PATH, h.ts, h.nonce)), h.sig));
  assert.equal(signedRequestText('get', '/p?q', 5, 'ab'), 'postern-webapi-v1\nGET\n/p?q\n5\nab');
});

test('tampered path, query, method, timestamp or nonce are refused', async () => {
  const key = generateKeyPair();
  const cert = userCert(key);
  const { ca } = authenticator({ t: T0 });
  const header = signRequest({ keyPair: key, certificate: cert.raw, method: 'GET', pathAndQuery: PATH, now: T0, nonce: 'aa'.repeat(16) });
  await refused(ca.authenticate('GET', '/webapi/nodes?labels=env%3Ddev&search=web', header), /signature does not verify/);
  await refused(ca.authenticate('GET', '/webapi/other', header), /signature does not verify/);
  await refused(ca.authenticate('POST', PATH, header), /signature does not verify/);
  await refused(ca.authenticate('GET', PATH, header.replace(/ts=(\d+)/, (_m, ts: string) => `ts=${Number(ts) + 1}`)), /signature does not verify/);
  await refused(ca.authenticate('GET', PATH, header.replace(/nonce=a/, 'nonce=b')), /signature does not verify/);
  // The untampered one still passes: the refusals above burned no nonce.
  await ca.authenticate('GET', PATH, header);
});

test('a replayed nonce is refused while its timestamp is acceptable', async () => {
  const key = generateKeyPair();
  const cert = userCert(key);
  const now = { t: T0 };
  const { ca } = authenticator(now);
  const header = signRequest({ keyPair: key, certificate: cert.raw, method: 'GET', pathAndQuery: PATH, now: T0 });
  await ca.authenticate('GET', PATH, header);
  await refused(ca.authenticate('GET', PATH, header), /already used \(replayed nonce\)/);
  now.t = new Date(T0.getTime() + MAX_SKEW_MS - 1);
  await refused(ca.authenticate('GET', PATH, header), /replayed nonce/);
  // Past the window, the timestamp check refuses it instead.
  now.t = new Date(T0.getTime() + MAX_SKEW_MS + 1);
  await refused(ca.authenticate('GET', PATH, header), /timestamp is more than 5 minutes/);
});

test('a timestamp more than five minutes off either way is refused', async () => {
  const key = generateKeyPair();
  const cert = userCert(key);
  const { ca } = authenticator({ t: T0 });
  for (const off of [-MAX_SKEW_MS - 1000, MAX_SKEW_MS + 1000]) {
    const header = signRequest({ keyPair: key, certificate: cert.raw, method: 'GET', pathAndQuery: PATH, now: new Date(T0.getTime() + off) });
    await refused(ca.authenticate('GET', PATH, header), /timestamp is more than 5 minutes/);
  }
  const inside = signRequest({ keyPair: key, certificate: cert.raw, method: 'GET', pathAndQuery: PATH, now: new Date(T0.getTime() - MAX_SKEW_MS + 1000) });
  await ca.authenticate('GET', PATH, inside);
});

test('a signature by another key than the certificate\'s is refused', async () => {
  const key = generateKeyPair();
  const thief = generateKeyPair();
  const cert = userCert(key);
  const { ca } = authenticator({ t: T0 });
  const header = signRequest({ keyPair: thief, certificate: cert.raw, method: 'GET', pathAndQuery: PATH, now: T0 });
  await refused(ca.authenticate('GET', PATH, header), /signature does not verify with the certificate's key/);
});

test('expired, not yet valid, host, and other-CA certificates are refused', async () => {
  const key = generateKeyPair();
  const { ca } = authenticator({ t: T0 });
  const sign = (cert: SshCertificate): string => signRequest({ keyPair: key, certificate: cert.raw, method: 'GET', pathAndQuery: PATH, now: T0 });
  const expired = userCert(key, { ttlMs: 60_000, now: new Date(T0.getTime() - 3600_000) });
  await refused(ca.authenticate('GET', PATH, sign(expired)), /the certificate expired at/, 'ERR_POSTERN_CERT_EXPIRED');
  const future = userCert(key, { now: new Date(T0.getTime() + 3600_000) });
  await refused(ca.authenticate('GET', PATH, sign(future)), /not valid before/);
  await refused(ca.authenticate('GET', PATH, sign(userCert(key, { type: 'host' }))), /not a user certificate/);
  await refused(ca.authenticate('GET', PATH, sign(userCert(key, { ca: generateKeyPair() }))), /unknown ca SHA256:/);
  await refused(ca.authenticate('GET', PATH, sign(userCert(key, { ca: hostCa }))), /unknown ca/);
  // A certificate whose CA signature was altered.
  const forged = userCert(key);
  const raw = Buffer.from(forged.raw);
  raw[raw.length - 5] ^= 1;
  await refused(ca.authenticate('GET', PATH, signRequest({ keyPair: key, certificate: raw, method: 'GET', pathAndQuery: PATH, now: T0 })), /signature is invalid/);
});

test('missing or malformed headers are refused with what is wrong', async () => {
  const { ca } = authenticator({ t: T0 });
  await refused(ca.authenticate('GET', PATH, undefined), /needs a signature/);
  await refused(ca.authenticate('GET', PATH, 'Bearer abc'), /unsupported authorization scheme/);
  await refused(ca.authenticate('GET', PATH, 'Postern-Cert cert=AAAA,ts=1,nonce=zz,sig=AAAA'), /malformed nonce/);
  await refused(ca.authenticate('GET', PATH, `Postern-Cert cert=AAAA,ts=x,nonce=${'a'.repeat(32)},sig=AAAA`), /malformed timestamp/);
  await refused(ca.authenticate('GET', PATH, `Postern-Cert cert=AAAA,ts=${T0.getTime()},nonce=${'a'.repeat(32)},sig=AAAA`), /cannot be read/);
  await refused(ca.authenticate('GET', PATH, 'Postern-Cert cert=A,cert=B'), /appears twice/);
});

test('each verified nonce goes to auth with its user, source and the end of its window; CA keys are cached', async () => {
  const key = generateKeyPair();
  const cert = userCert(key);
  const now = { t: T0 };
  const { ca, pings, claims } = authenticator(now);
  const signer = requestSigner(key, cert.raw, () => now.t);
  for (let i = 0; i < 3; i++) await ca.authenticate('GET', PATH, signer('GET', PATH), '192.0.2.7');
  // A refused signature claims nothing: strangers cannot use up a user's limit.
  await refused(ca.authenticate('GET', '/webapi/other', signer('GET', PATH), '192.0.2.7'), /does not verify/);
  assert.equal(claims.length, 3);
  assert.deepEqual(claims[0], { user: 'alice', clientAddr: '192.0.2.7', expiresAt: T0.getTime() + MAX_SKEW_MS });
  now.t = new Date(T0.getTime() + MAX_SKEW_MS + 1);
  await ca.authenticate('GET', PATH, signer('GET', PATH));
  // User CA keys come from auth at most once in a while.
  assert.equal(pings(), 2);
});

test('the nodes query: labels k=v,k2=v2 and search', () => {
  assert.deepEqual(parseNodesQuery({ labels: 'env=prod,team=web', search: 'web' }), { labels: { env: 'prod', team: 'web' }, search: 'web' });
  assert.throws(() => parseNodesQuery({ labels: 'env=prod,team=a=b' }), /invalid label selector "env=prod,team=a=b": invalid value "a=b" of label "team"/, 'one grammar: a value holds no "="');
  assert.deepEqual(parseNodesQuery({}), {});
  assert.throws(() => parseNodesQuery({ labels: 'env' }), /invalid label selector "env"/);
  assert.throws(() => parseNodesQuery({ labels: ['a=b', 'c=d'] }), /labels must be given once/);
});

/**
 * Signed web API requests, against real `postern serve`
 * processes: an auth+proxy and a second proxy that joined it. A signed request is good
 * once in the whole cluster: replayed on the second proxy it is refused, and after the
 * second proxy restarts, and after auth itself restarts (the nonce lives in auth's
 * storage). Limits are per user and per source: one user's flood gets 429 with
 * Retry-After while another user's requests, from another address, go through; and a
 * flood from one address gets 429 there while the same user from another address is
 * served. Loopback has many addresses (127.0.0.0/8), so sources are 127.0.0.2 and up.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { TestCluster, userFiles } from '../helpers/cluster.ts';
import { startServe } from '../helpers/serve.ts';
import type { ServeProcess } from '../helpers/serve.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { runPostern } from '../helpers/cli.ts';
import { signRequest } from '../../src/client/request-signing.ts';
import { parsePrivateKeyOpenSSH } from '../../src/ssh/keys.ts';
import { parseCertificate } from '../../src/ssh/certs.ts';

const PATH = '/webapi/nodes';
const SECRET_ALICE = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const SECRET_BOB = 'MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LK';

interface Answer { status: number; retryAfter: string | undefined; body: string }

/** GETs `path` on `web` from the loopback address `source` with an Authorization header. */
function get(web: string, source: string, authorization: string, path = PATH): Promise<Answer> {
  const [host, port] = web.split(':');
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host, port: Number(port), path, method: 'GET', localAddress: source, rejectUnauthorized: false, agent: false, headers: { authorization } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        const ra = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, retryAfter: typeof ra === 'string' ? ra : undefined, body });
      });
    });
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error(`no answer to ${path}`)));
    req.end();
  });
}

/** Signs a GET of PATH as the user logged in under `home`. */
function signer(home: string, user: string): () => string {
  const f = userFiles(home, user);
  const keyPair = parsePrivateKeyOpenSSH(readFileSync(f.key, 'utf8'));
  const certificate = parseCertificate(readFileSync(f.cert, 'utf8')).raw;
  return () => signRequest({ keyPair, certificate, method: 'GET', pathAndQuery: PATH, now: new Date() });
}

const c = new TestCluster();
before(async () => { await c.start(); });
after(() => c.stop());

test('a signed request is good once in the cluster: refused on a second proxy, after its restart and after auth restarts', { timeout: 300_000 }, async (t) => {
  const home = await c.user('alice', LOCAL_USER, SECRET_ALICE);
  const sign = signer(home, 'alice');
  const tok = await c.admin(['tokens', 'add', '--type', 'proxy', '--ttl', '10m', '--format', 'json']);
  assert.equal(tok.code, 0, tok.stderr);
  const proxyArgs = ['--roles', 'proxy', '--auth-server', c.serve.auth, '--ca-pin', c.serve.caPin, '--web-addr', '127.0.0.1:0', '--ssh-addr', '127.0.0.1:0'];
  let second: ServeProcess = await startServe({ args: [...proxyArgs, '--join-token', (JSON.parse(tok.stdout) as { token: string }).token] });
  t.after(() => second.stop());

  const header = sign();
  const first = await get(c.serve.web, '127.0.0.1', header);
  assert.equal(first.status, 200, first.body);
  const replayed = await get(second.web, '127.0.0.1', header);
  assert.equal(replayed.status, 401, replayed.body);
  assert.match(replayed.body, /already used \(replayed nonce\)/);
  // A fresh request works on the second proxy: the refusal was the nonce, not the proxy.
  const fresh = sign();
  assert.equal((await get(second.web, '127.0.0.1', fresh)).status, 200);

  // The second proxy restarts (its identity is kept in its data dir): the nonces are not in its memory.
  await second.stop();
  second = await startServe({ dataDir: second.dataDir, args: proxyArgs });
  for (const h of [header, fresh]) {
    const again = await get(second.web, '127.0.0.1', h);
    assert.equal(again.status, 401, again.body);
    assert.match(again.body, /replayed nonce/);
  }
  await second.stop();

  // Auth (with its proxy) restarts on the same storage: still refused.
  const dataDir = c.serve.dataDir;
  await c.serve.stop();
  c.serve = await startServe({ dataDir, args: ['--web-addr', '127.0.0.1:0', '--auth-addr', '127.0.0.1:0', '--ssh-addr', '127.0.0.1:0', '--cluster-name', 'test.example'] });
  const afterRestart = await get(c.serve.web, '127.0.0.1', header);
  assert.equal(afterRestart.status, 401, afterRestart.body);
  assert.match(afterRestart.body, /replayed nonce/);
  assert.equal((await get(c.serve.web, '127.0.0.1', sign())).status, 200);
});

test('limits are per user and per source: one user\'s flood never refuses another user', { timeout: 300_000 }, async (t) => {
  const PER_USER = 20;
  const PER_SOURCE = 40;
  for (const [k, v] of [['signed_rate_per_user', PER_USER], ['signed_rate_per_source', PER_SOURCE]] as const) {
    const set = await c.admin(['settings', 'set', k, String(v)]);
    assert.equal(set.code, 0, set.stderr);
  }
  t.after(async () => {
    await c.admin(['settings', 'set', 'signed_rate_per_user', '600']);
    await c.admin(['settings', 'set', 'signed_rate_per_source', '3000']);
  });
  const signAlice = signer(await c.user('alice2', LOCAL_USER, SECRET_ALICE), 'alice2');
  const signBob = signer(await c.user('bob', LOCAL_USER, SECRET_BOB), 'bob');

  // Alice floods from 127.0.0.2, 100 requests at once: at most her bucket's worth are served.
  const flood = await Promise.all(Array.from({ length: 100 }, () => get(c.serve.web, '127.0.0.2', signAlice())));
  const served = flood.filter((a) => a.status === 200).length;
  const limited = flood.filter((a) => a.status === 429);
  t.diagnostic(`alice's flood of 100: ${served} served, ${limited.length} refused with 429`);
  assert.ok(served >= 1 && served <= PER_USER + 1, `served ${served}`);
  assert.equal(served + limited.length, 100, flood.map((a) => a.status).join(','));
  assert.ok(Number(limited[0].retryAfter) >= 1, `Retry-After: ${limited[0].retryAfter}`);
  assert.match(limited[0].body, /"code":"ERR_POSTERN_RATE_LIMITED"/);
  // Alice from another address: still refused (her own limit).
  const aliceElsewhere = await get(c.serve.web, '127.0.0.3', signAlice());
  assert.equal(aliceElsewhere.status, 429, aliceElsewhere.body);
  assert.match(aliceElsewhere.body, /too many signed request attempts for this user/);
  // Bob from another address is served at once.
  const bob = await get(c.serve.web, '127.0.0.3', signBob());
  assert.equal(bob.status, 200, bob.body);
  // The flood drained 127.0.0.2's bucket too: bob from there gets 429 that names the address.
  const bobFromFlood = await get(c.serve.web, '127.0.0.2', signBob());
  assert.equal(bobFromFlood.status, 429, bobFromFlood.body);
  assert.match(bobFromFlood.body, /from 127\.0\.0\.2/);
});

test('with the default limits, a user\'s flood of 2,000 signed requests leaves another user\'s postern ls working', { timeout: 300_000 }, async (t) => {
  const signMal = signer(await c.user('mal', LOCAL_USER, 'KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU'), 'mal');
  const carol = await c.user('carol', LOCAL_USER, 'NBSWY3DPNBSWY3DPNBSWY3DPNBSWY3DP');
  let served = 0;
  let limited = 0;
  let other = 0;
  let done = false;
  const start = Date.now();
  // 2,000 requests, 20 at a time, from 127.0.0.4 (not where carol's CLI comes from).
  const flood = (async () => {
    for (let i = 0; i < 100; i++) {
      for (const a of await Promise.all(Array.from({ length: 20 }, () => get(c.serve.web, '127.0.0.4', signMal())))) {
        if (a.status === 200) served++; else if (a.status === 429) limited++; else other++;
      }
    }
    done = true;
  })();
  // Carol's CLI, during the flood and after it.
  const lsTimes: number[] = [];
  while (!done || lsTimes.length === 0) {
    const t0 = Date.now();
    const ls = await runPostern(['ls', '--format', 'json'], { env: { TSH_HOME: carol } });
    assert.equal(ls.code, 0, ls.stderr);
    lsTimes.push(Date.now() - t0);
  }
  await flood;
  const refill = Math.ceil(((Date.now() - start) / 60_000) * 600);
  t.diagnostic(`mal's 2,000 requests: ${served} served, ${limited} refused with 429, ${other} other; carol's ${lsTimes.length} postern ls during it all worked, slowest ${Math.max(...lsTimes)} ms`);
  assert.equal(other, 0);
  // The bucket: 600 at once, then 600 a minute for as long as the flood lasted.
  assert.ok(served <= 600 + refill + 1, `served ${served}, bucket ${600 + refill}`);
  assert.ok(limited >= 1, `limited ${limited}`);
});

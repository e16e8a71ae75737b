/**
 * Live sessions across proxies, as behind a load balancer (docs/ha.md): one auth server
 * (SQLite) and two proxies A and B, a real sshd node, `session_recording: proxy`. alice's
 * shell runs through proxy A (the real `ssh -A -tt` with `postern proxy ssh`); carol and bob
 * are logged in through proxy B. Through B: `postern sessions ls` lists the session with the
 * proxy that carries it; carol observes it live with `postern join` (B relays to A over
 * mutual TLS) and her keys never reach the shell; alice joins as peer through B and what
 * she types runs; refusals through B are the single-proxy ones (carol as peer, bob, an
 * unknown id), each audited; A's peer listener refuses a client without a proxy
 * certificate of the cluster. Then `kill -9` of proxy A: the relayed observer is told, and
 * B's list drops the session within seconds.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { TestCluster, addToAgent } from '../helpers/cluster.ts';
import { runPostern } from '../helpers/cli.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { waitFor, waitForText as until } from '../helpers/wait.ts';
import { addJoinRole, assertJoinsRefused, joiner, ownerShell, sessionsOf, startRecordingProxies } from '../helpers/live-sessions.ts';
import type { Shell } from '../helpers/live-sessions.ts';
import type { IdentityFile } from '../../src/core/server-paths.ts';
import { parseHostPort } from '../../src/core/text.ts';

const c = new TestCluster();
after(() => c.stop());

/** Connects to a peer listener with the given certificate (or none); resolves with what happened. */
function probePeer(addr: string, ca: string, cert?: { certPem: string; keyPem: string }): Promise<string> {
  const { host, port } = parseHostPort(addr, 3021);
  return new Promise((resolve) => {
    const sock = tlsConnect({ host, port, ca, rejectUnauthorized: false, minVersion: 'TLSv1.3', ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) });
    let got = '';
    sock.on('secureConnect', () => {
      const body = Buffer.from(JSON.stringify({ session: 'x'.repeat(16), user: 'mallory', mode: 'peer', clientAddr: '127.0.0.1' }));
      const head = Buffer.alloc(5);
      head[0] = 0x4a;
      head.writeUInt32BE(body.length, 1);
      sock.write(Buffer.concat([head, body]));
    });
    sock.on('data', (d) => { got += d.toString('latin1'); });
    sock.on('error', (err) => resolve(`error: ${err.message}`));
    sock.on('close', () => resolve(got === '' ? 'closed with no answer' : `answered: ${got}`));
  });
}

test('a session carried by proxy A is listed, observed and joined through proxy B; refusals as on one proxy; A\'s death drops it from B\'s list', { timeout: 600_000 }, async (t) => {
  const { auth, admin, proxies: [pA, pB], through } = await startRecordingProxies(c);

  const agentSock = await c.agent();
  through(pA);
  await addJoinRole(c, 'watcher', ['observer']);
  await c.node('web1', 'env=prod');
  const aliceA = await c.user('alice', LOCAL_USER, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  through(pB);
  const carol = await c.user('carol', LOCAL_USER, 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U', 'watcher');
  const bob = await c.user('bob', LOCAL_USER, 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ');
  // alice also logs in through B (another TSH_HOME), as she would land there from another laptop.
  const aliceB = join(c.work, 'home-alice-b');
  const login = await runPostern(['login', '--proxy', pB.web, '--user', 'alice', '--password-stdin', '--otp', await c.freshCode('alice', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'), '--ca-pin', auth.caPin, '--add-keys-to-agent', 'no'],
    { env: { TSH_HOME: aliceB }, input: 'correct horse battery staple\n' });
  assert.equal(login.code, 0, login.stderr);

  // alice's shell through proxy A: ssh -A -tt with ProxyCommand `postern proxy ssh` (her profile is A's).
  addToAgent(c, aliceA, 'alice', agentSock);
  const shell = (): Shell => ownerShell(c, aliceA, agentSock);

  const { sh, out, exit: shExit } = shell();
  sh.stdin.write('echo owner-$((1+1))-ready\n');
  await until(out, 'owner-2-ready');

  // Listed through B, with the proxy that carries it (but not where proxies reach each other: that is not for users).
  const live = await waitFor(async () => (await sessionsOf(carol)).find((s) => s.user === 'alice' && s.kind === 'ssh'), { what: 'alice\'s session listed through proxy B', intervalMs: 300 });
  assert.equal(live.proxyPeerAddr, undefined, JSON.stringify(live));
  assert.equal(live.proxyInstance, undefined, JSON.stringify(live));
  const peerAddrA = /peer=(\S+)/.exec(pA.ready)?.[1];
  assert.ok(peerAddrA, pA.ready);
  assert.equal(live.proxySshAddr?.replace(/^.*:/, ''), /ssh=[^ ]*:(\d+)/.exec(pA.ready)?.[1], 'the session is carried by proxy A');
  assert.equal((await sessionsOf(bob)).some((s) => s.id === live.id), false, 'bob may not see it');

  // carol observes through B: the screen so far, then live output; her keys never reach the shell.
  const observer = joiner(carol, live.id, 'observer', c);
  await until(observer.err, /joined session/);
  await until(observer.out, 'owner-2-ready');
  await until(out, /carol joined as observer/);
  sh.stdin.write('echo live-$((2+3))-out\n');
  await until(observer.out, 'live-5-out');
  observer.proc.stdin.write('echo carol-typed-this\n');
  await waitFor(async () => (await sessionsOf(aliceB)).find((s) => s.id === live.id && s.participants.some((p) => p.user === 'carol')), { what: 'carol among the participants, seen through B', intervalMs: 300 });

  // alice joins as peer through B with piped stdin: the line runs in the shell; EOF leaves.
  const n = randomInt(1000, 1_000_000);
  const peer = await runPostern(['join', live.id, '--mode', 'peer'], { env: { TSH_HOME: aliceB }, input: `echo peer-$((${n}+1))\n` });
  assert.equal(peer.code, 0, peer.stderr + pB.stderr());
  assert.match(peer.stderr, /joined session/);
  await until(out, `peer-${n + 1}`);
  await until(observer.out, `peer-${n + 1}`);
  await until(out, 'alice left');
  assert.equal(out().includes('carol-typed-this'), false, 'an observer\'s keys reached the shell through the relay');

  // Refusals through B: exactly the single-proxy ones.
  await assertJoinsRefused(live.id, { carol, bob, unknownBy: carol });

  // A's peer listener: no certificate, or a cluster certificate that is not a proxy's (the admin's), gets nothing.
  const ca = (JSON.parse(readFileSync(join(auth.dataDir, 'admin-identity.json'), 'utf8')) as IdentityFile);
  const noCert = await probePeer(peerAddrA, ca.caPem);
  assert.doesNotMatch(noCert, /answered/, noCert);
  const adminCert = await probePeer(peerAddrA, ca.caPem, ca);
  assert.doesNotMatch(adminCert, /answered/, adminCert);
  // The control: proxy B's own peer identity gets an answer (no such session).
  const asB = await probePeer(peerAddrA, ca.caPem, { certPem: readFileSync(join(pB.dataDir, 'proxy', 'peer.crt'), 'utf8'), keyPem: readFileSync(join(pB.dataDir, 'proxy', 'peer.key'), 'utf8') });
  assert.match(asB, /answered: .*no live session/, asB);

  // The owner ends the shell: the relayed observer is told and exits 0; the session leaves B's list.
  sh.stdin.write('exit\n');
  assert.equal(await shExit, 0, out());
  assert.equal(await observer.exit, 0, observer.err());
  assert.match(observer.err(), /session ended/);
  await waitFor(async () => !(await sessionsOf(carol)).some((s) => s.id === live.id), { what: 'the ended session to leave B\'s list', intervalMs: 300 });

  // Every join through B is audited by auth as on one proxy.
  const audit = await waitFor(async () => {
    const r = await admin(['audit', '--type', 'session.join', '--since', '1h', '--format', 'json']);
    const events = (JSON.parse(r.stdout) as Array<{ user: string; success: boolean; mode: string; sessionId: string }>).filter((e) => e.sessionId === live.id);
    return events.length >= 4 ? events : undefined;
  }, { what: 'the session.join events', intervalMs: 300 });
  const has = (user: string, success: boolean, mode: string): boolean => audit.some((e) => e.user === user && e.success === success && e.mode === mode);
  assert.ok(has('carol', true, 'observer') && has('alice', true, 'peer') && has('carol', false, 'peer') && has('bob', false, 'observer'), JSON.stringify(audit));

  // Proxy A dies (kill -9) with a session open and an observer relayed through B.
  const second = shell();
  second.sh.stdin.write('echo second-$((3+4))\n');
  await until(second.out, 'second-7');
  const doomed = await waitFor(async () => (await sessionsOf(carol)).find((s) => s.user === 'alice' && s.id !== live.id), { what: 'the second session listed through B', intervalMs: 300 });
  const watcher = joiner(carol, doomed.id, 'observer', c);
  await until(watcher.err, /joined session/);
  await pA.kill();
  const killedAt = Date.now();
  assert.equal(await watcher.exit, 0, watcher.err());
  assert.match(watcher.err(), /connection to proxy .* was lost/);
  await waitFor(async () => !(await sessionsOf(carol)).some((s) => s.id === doomed.id), { what: 'the dead proxy\'s session to leave B\'s list', timeoutMs: 30_000, intervalMs: 250 });
  const gone = Date.now() - killedAt;
  t.diagnostic(`proxy A killed: its session left proxy B's list ${gone} ms later`);
  assert.ok(gone <= 20_000, `the dead proxy's session stayed listed ${gone} ms`);
  const late = await runPostern(['join', doomed.id, '--mode', 'observer'], { env: { TSH_HOME: carol } });
  assert.equal(late.code, 1);
  assert.match(late.stderr, /no live session/);
});

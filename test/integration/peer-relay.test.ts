/**
 * The proxy-to-proxy relay in one process with real TLS sockets (src/proxy/peer-relay.ts):
 * two SessionHubs A and B with peer identities from a real cluster TLS CA. Checked 30 times
 * each: a joiner relayed through B sees A's screen so far and every byte after, in order,
 * a peer's keys reach A's node and an observer's do not, and the end reaches the joiner with
 * the exit status; the session ending while the relay is being opened either refuses the
 * join (no live session) or ends it, never hangs. B refuses a server that is not the proxy
 * the session names, and A refuses a client certificate without the proxy role.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTlsCa, issueTlsCertificate, newTlsKeyPair } from '../../src/auth/tls-ca.ts';
import { SessionHub } from '../../src/proxy/session-hub.ts';
import type { JoinableSession, ParticipantIo } from '../../src/proxy/session-hub.ts';
import { peerJoiner, startPeerServer } from '../../src/proxy/peer-relay.ts';
import type { PeerTls } from '../../src/proxy/peer-relay.ts';
import type { HubAuth } from '../../src/api/proxy-auth.ts';
import type { ActiveSession } from '../../src/api/types.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { waitFor } from '../helpers/wait.ts';

const ca = await createTlsCa('relay.example', new Date());
async function identity(name: string, role: 'proxy' | 'admin'): Promise<PeerTls> {
  const { keyPem, publicKeyPem } = newTlsKeyPair();
  const certPem = await issueTlsCertificate(ca, { publicKeyPem, commonName: name, role, hosts: ['127.0.0.1'], usage: role === 'admin' ? 'client' : 'both', ttlMs: 3_600_000, now: new Date() });
  return { certPem: `${certPem.trim()}\n${ca.certPem.trim()}\n`, keyPem, caPem: ca.certPem };
}

const fakeAuth = (): HubAuth => ({
  startRecording: async () => ({ id: `rec-${Math.random().toString(36).slice(2)}`, recordInput: false }),
  appendRecording: async (r) => ({ seq: r.seq, nextSeq: r.seq + 1, duplicate: false }),
  finishRecording: async () => ({}) as never,
  upsertActiveSession: async () => {},
  endActiveSession: async () => {},
  heartbeatSessions: async () => {},
});

const tlsA = await identity('proxy-a', 'proxy');
const tlsB = await identity('proxy-b', 'proxy');
const hubA = new SessionHub({ auth: fakeAuth(), proxyName: 'proxy-a', log: silentLogger, reportIntervalMs: 60_000 });
const serverA = await startPeerServer({ hub: hubA, tls: tlsA, addr: { host: '127.0.0.1', port: 0 }, log: silentLogger });
hubA.opts.proxyPeerAddr = `127.0.0.1:${serverA.port}`;
const joinViaB = peerJoiner({ tls: tlsB, log: silentLogger, timeoutMs: 10_000 });
after(async () => { await hubA.close(); await serverA.close(); });

/** A joiner's terminal that keeps what it got. */
function screen(user: string, mode: 'observer' | 'peer'): ParticipantIo & { out: () => string; closed: () => string | undefined; notices: string[] } {
  let out = '';
  let closed: string | undefined;
  const notices: string[] = [];
  return { user, mode, write: (d) => { out += d.toString(); }, notice: (t) => notices.push(t), close: (r) => { closed = r; }, out: () => out, closed: () => closed, notices };
}

async function startOnA(typed: string[]): Promise<{ live: Awaited<ReturnType<SessionHub['start']>>; record: ActiveSession }> {
  const live = await hubA.start({ kind: 'web', user: 'carol', node: 'web1', login: 'root', width: 80, height: 24 }, { toNode: (d) => typed.push(d.toString()) });
  live.attach({ user: 'carol', mode: 'owner', write: () => {}, notice: () => {}, close: () => {} });
  return { live, record: live.describe() };
}

test('a relayed joiner sees the screen so far and every byte after in order; a peer types, an observer does not; the end arrives (30 times)', async () => {
  for (let i = 0; i < 30; i++) {
    const typed: string[] = [];
    const { live, record } = await startOnA(typed);
    live.output(Buffer.from(`before-${i};`));
    const mode = i % 2 === 0 ? 'peer' : 'observer';
    const joined: JoinableSession = await joinViaB(record, { user: 'dave', mode, clientAddr: '127.0.0.1' });
    assert.equal(joined.start.user, 'carol');
    assert.equal(joined.terminalSize.cols, 80);
    const io = screen('dave', mode);
    const me = joined.attach(io);
    let expected = `before-${i};`;
    for (let k = 0; k < 50; k++) { live.output(Buffer.from(`${k},`)); expected += `${k},`; }
    me.input(Buffer.from(`keys-${i}`));
    await waitFor(() => io.out() === expected || undefined, { what: `the joiner's screen in round ${i}`, timeoutMs: 10_000, detail: () => io.out() });
    if (mode === 'peer') await waitFor(() => typed.includes(`keys-${i}`) || undefined, { what: 'the peer\'s keys at the node', timeoutMs: 10_000 });
    await waitFor(() => joined.describe().participants.some((p) => p.user === 'dave') || undefined, { what: 'dave in the participants', timeoutMs: 10_000 });
    live.exitCode = 3;
    await live.end(3);
    await waitFor(() => io.closed(), { what: 'the end at the joiner', timeoutMs: 10_000 });
    assert.match(io.closed()!, /exit status 3/);
    assert.equal(joined.exitCode, 3);
    if (mode === 'observer') assert.equal(typed.includes(`keys-${i}`), false, 'an observer\'s keys reached the node');
  }
});

test('a session that ends while the relay opens: the join is refused or ended, never left hanging (30 times)', async (t) => {
  let refused = 0;
  let ended = 0;
  for (let i = 0; i < 30; i++) {
    const { live, record } = await startOnA([]);
    const opening = joinViaB(record, { user: 'dave', mode: 'observer', clientAddr: '127.0.0.1' });
    // The end comes 0 to 58 ms after the relay starts opening: before, during and after its handshake.
    const ending = new Promise<void>((r) => setTimeout(() => { void live.end(0).then(() => r()); }, (i % 30) * 2));
    try {
      const joined = await opening;
      const io = screen('dave', 'observer');
      joined.attach(io);
      await waitFor(() => io.closed(), { what: 'the end of a relay to an ended session', timeoutMs: 10_000 });
      ended++;
    } catch (err) {
      assert.match((err as Error).message, /no live session|ended/);
      refused++;
    }
    await ending;
  }
  assert.equal(refused + ended, 30);
  t.diagnostic(`${refused} refused at A, ${ended} ended after the relay opened`);
});

test('B refuses a server that is not the proxy the session names; A refuses a client without the proxy role', async () => {
  const typed: string[] = [];
  const { live, record } = await startOnA(typed);
  await assert.rejects(joinViaB({ ...record, proxy: 'proxy-c' }, { user: 'dave', mode: 'peer', clientAddr: '127.0.0.1' }), /not proxy proxy-c of this cluster/);
  const asAdmin = peerJoiner({ tls: await identity('root', 'admin'), log: silentLogger });
  await assert.rejects(asAdmin(record, { user: 'dave', mode: 'peer', clientAddr: '127.0.0.1' }), /closed the connection|cannot reach|socket/);
  await assert.rejects(joinViaB({ ...record, id: 'NoSuchSession42' }, { user: 'dave', mode: 'peer', clientAddr: '127.0.0.1' }), /no live session NoSuchSession42/);
  await live.end(0);
});

test('a session id never starts with "-" (postern join read such an id as an option: 1 session in 64 could not be joined)', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 400; i++) {
    const live = await hubA.start({ kind: 'web', user: 'carol', node: 'web1', login: 'root', width: 80, height: 24 }, { toNode: () => {} });
    ids.push(live.id);
    await live.end(0);
  }
  assert.deepEqual(ids.filter((id) => id.startsWith('-')), []);
  assert.ok(ids.every((id) => /^[A-Za-z0-9_][A-Za-z0-9_-]{15}$/.test(id)), ids.join(' '));
});

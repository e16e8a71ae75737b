/**
 * The pure parts of live sessions, join and the web: who may join whom, the agent auth
 * serves for a web session, cookies, the join escape, `settings set`, the tunnel's request
 * line, and the SessionHub (observers' keys dropped, peers' sent, the screen replayed to a
 * joiner, an end never overtaken by an older report).
 */
import { test } from 'node:test';
import { waitFor } from '../helpers/wait.ts';
import assert from 'node:assert/strict';
import { joinModes, checkJoinRules, checkActiveSession } from '../../src/auth/active-sessions.ts';
import { answerAgentRequest } from '../../src/ssh/agent-server.ts';
import { generateKeyPair, verifySsh } from '../../src/ssh/keys.ts';
import { SshReader, SshWriter } from '../../src/ssh/wire.ts';
import { readCookie, sessionCookie } from '../../src/proxy/web-auth.ts';
import { parseSetting } from '../../src/cli/commands/settings/values.ts';
import { parseTunnelRequest } from '../../src/proxy/tunnel.ts';
import { SessionHub } from '../../src/proxy/session-hub.ts';
import type { HubAuth } from '../../src/api/proxy-auth.ts';
import { silentLogger } from '../../src/core/logger.ts';
import type { RoleSpec } from '../../src/api/auth-types.ts';

const role = (join_sessions?: RoleSpec['join_sessions']): RoleSpec => ({ name: 'r', logins: ['x'], node_labels: { '*': ['*'] }, ...(join_sessions ? { join_sessions } : {}) });

test('join rules: by the owner\'s roles or "*", in the modes listed; none without a rule', () => {
  assert.deepEqual([...joinModes([role([{ roles: ['access'], modes: ['observer'] }])], ['access'])], ['observer']);
  assert.deepEqual([...joinModes([role([{ roles: ['access'], modes: ['observer'] }])], ['admin'])], []);
  assert.deepEqual([...joinModes([role([{ roles: ['*'], modes: ['observer', 'peer'] }])], [])].sort(), ['observer', 'peer']);
  assert.deepEqual([...joinModes([role()], ['access'])], []);
  assert.throws(() => checkJoinRules('r', [{ roles: [], modes: ['peer'] }]), /needs roles/);
  assert.throws(() => checkJoinRules('r', [{ roles: ['a'], modes: ['moderator'] }]), /needs modes/);
  assert.deepEqual(checkJoinRules('r', [{ roles: ['a'], modes: ['peer', 'peer'] }]), [{ roles: ['a'], modes: ['peer'] }]);
  assert.throws(() => checkActiveSession({ id: 'short', kind: 'web', user: 'u', node: 'n', login: 'l', startedAt: 't', proxy: 'p', participants: [] }), /session id/);
});

test('the web session agent lists the certificate and the key, signs for either, and refuses everything else', () => {
  const pair = generateKeyPair();
  const cert = Buffer.from('pretend-certificate-blob');
  const key = { privateKey: pair.privateKey, publicWire: pair.publicWire, certificateWire: cert, comment: 'alice@postern-web' };
  const ids = answerAgentRequest(key, Buffer.of(11));
  assert.equal(ids[0], 12);
  const r = new SshReader(ids.subarray(1), 'answer');
  assert.equal(r.uint32(), 2);
  assert.deepEqual(Buffer.from(r.bytes()), cert);
  r.string();
  assert.deepEqual(Buffer.from(r.bytes()), pair.publicWire);
  const data = Buffer.from('session data to sign');
  for (const blob of [cert, pair.publicWire]) {
    const res = answerAgentRequest(key, new SshWriter().byte(13).string(blob).string(data).uint32(0).toBuffer());
    assert.equal(res[0], 14);
    assert.ok(verifySsh(pair.publicWire, data, new SshReader(res.subarray(1), 'sig').bytes()));
  }
  const other = generateKeyPair();
  assert.deepEqual(answerAgentRequest(key, new SshWriter().byte(13).string(other.publicWire).string(data).uint32(0).toBuffer()), Buffer.of(5));
  for (const msg of [Buffer.of(17), Buffer.of(19), Buffer.of(22), Buffer.alloc(0), Buffer.of(13, 0, 0)]) assert.deepEqual(answerAgentRequest(key, msg), Buffer.of(5), `message ${msg[0]}`);
});

test('cookies: read from a Cookie header; the session cookie is HttpOnly, Secure, SameSite=Strict, Path=/', () => {
  assert.equal(readCookie('a=1; __Host-postern_session=abc; b=2', '__Host-postern_session'), 'abc');
  assert.equal(readCookie('a=1', '__Host-postern_session'), undefined);
  const c = sessionCookie('abc', '2030-01-01T00:00:00Z');
  for (const part of ['__Host-postern_session=abc', 'Path=/', 'HttpOnly', 'Secure', 'SameSite=Strict', 'Expires=Tue, 01 Jan 2030 00:00:00 GMT']) assert.ok(c.includes(part), part);
  assert.match(sessionCookie(undefined), /=; .*Expires=Thu, 01 Jan 1970/);
});

test('settings set: values by their kind, unknown keys and bad values refused with the list', () => {
  assert.deepEqual(parseSetting('session_recording', 'proxy'), { session_recording: 'proxy' });
  assert.deepEqual(parseSetting('record_input', 'true'), { record_input: true });
  assert.deepEqual(parseSetting('max_session_ttl', '12h'), { max_session_ttl: 12 * 3_600_000 });
  assert.deepEqual(parseSetting('allow_unregistered', '10.0.0.0/8, *.lab'), { allow_unregistered: ['10.0.0.0/8', '*.lab'] });
  assert.throws(() => parseSetting('nope', 'x'), /unknown setting "nope"/);
  assert.throws(() => parseSetting('record_input', 'yes'), /true \| false/);
});

test('the tunnel request line: JSON, version 1, /tunnel with a target, a port and a login', () => {
  assert.deepEqual(parseTunnelRequest(JSON.stringify({ v: 1, path: '/tunnel?target=web1&port=22&login=root', authorization: 'x' })),
    { path: '/tunnel?target=web1&port=22&login=root', authorization: 'x', target: 'web1', port: 22, login: 'root' });
  assert.throws(() => parseTunnelRequest('{'), /not JSON/);
  assert.throws(() => parseTunnelRequest(JSON.stringify({ v: 2, path: '/tunnel', authorization: 'x' })), /version/);
  assert.throws(() => parseTunnelRequest(JSON.stringify({ v: 1, path: '/tunnel?target=web1&port=99999&login=root', authorization: 'x' })), /port/);
  assert.throws(() => parseTunnelRequest(JSON.stringify({ v: 1, path: '/other?target=web1&port=22&login=root', authorization: 'x' })), /unknown tunnel path/);
});

test('the SessionHub: observers\' keys dropped, peers\' sent, the screen replayed to joiners, the end reported last', async () => {
  const calls: string[] = [];
  let slowUpsert: (() => void) | undefined;
  const auth: HubAuth = {
    startRecording: async () => ({ id: 'rec-1', recordInput: false }),
    appendRecording: async (r) => ({ seq: r.seq, nextSeq: r.seq + 1, duplicate: false }),
    finishRecording: async () => ({}) as never,
    // The first report is slow: without ordering, the end would reach auth before it.
    upsertActiveSession: async (s) => { if (!slowUpsert) await new Promise<void>((r) => { slowUpsert = r; }); calls.push(`upsert:${s.participants.length}`); },
    endActiveSession: async () => { calls.push('end'); },
    heartbeatSessions: async () => {},
  };
  const hub = new SessionHub({ auth, proxyName: 'p1', log: silentLogger, reportIntervalMs: 60_000 });
  const toNode: string[] = [];
  const live = await hub.start({ kind: 'web', user: 'alice', node: 'web1', login: 'root', width: 80, height: 24 }, { toNode: (d) => toNode.push(d.toString()) });
  const seen = (_name: string): { out: string[]; notes: string[]; closed: string[] } => ({ out: [], notes: [], closed: [] });
  const o = seen('owner');
  const owner = live.attach({ user: 'alice', mode: 'owner', write: (d) => o.out.push(d.toString()), notice: (t) => o.notes.push(t), close: (r) => o.closed.push(r) });
  live.output(Buffer.from('prompt$ '));
  const b = seen('bob');
  const bob = live.attach({ user: 'bob', mode: 'observer', write: (d) => b.out.push(d.toString()), notice: (t) => b.notes.push(t), close: (r) => b.closed.push(r) });
  assert.deepEqual(b.out, ['prompt$ '], 'the joiner sees the screen so far');
  assert.deepEqual(o.notes, ['bob joined as observer']);
  assert.equal(bob.input(Buffer.from('rm -rf /\r')), false);
  const c = seen('carol');
  const carol = live.attach({ user: 'carol', mode: 'peer', write: (d) => c.out.push(d.toString()), notice: (t) => c.notes.push(t), close: (r) => c.closed.push(r) });
  assert.equal(carol.input(Buffer.from('ls\r')), true);
  assert.equal(owner.input(Buffer.from('pwd\r')), true);
  assert.deepEqual(toNode, ['ls\r', 'pwd\r']);
  live.output(Buffer.from('out'));
  assert.deepEqual([o.out.at(-1), b.out.at(-1), c.out.at(-1)], ['out', 'out', 'out']);
  assert.deepEqual(live.describe().participants.map((p) => `${p.user}:${p.mode}`), ['alice:owner', 'bob:observer', 'carol:peer']);
  const ended = live.end(0);
  slowUpsert!();
  await ended;
  await waitFor(() => calls.includes('end'), { what: 'the session\'s end to reach auth', timeoutMs: 5_000 });
  assert.equal(calls.at(-1), 'end', `the end comes after every upsert: ${calls.join(' ')}`);
  assert.deepEqual([o.closed.length, b.closed.length, c.closed.length], [1, 1, 1]);
  assert.throws(() => hub.get(live.id), /no live session/);
});

/**
 * Recordings at auth, against a real AuthServer on SQLite: what a proxy may write (chunk
 * numbers, re-sends, gaps, sizes, event checks, finish), who may read what, the asciicast
 * header built from the meta, paging, audit events, and a reopen of the data directory.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteBackend } from '../../src/storage/sqlite.ts';
import type { Backend } from '../../src/storage/backend.ts';
import { AuthServer, localAuthClient } from '../../src/auth/auth-server.ts';
import type { AuthClient } from '../../src/api/auth-client.ts';
import type { StartRecordingRequest } from '../../src/api/auth-types.ts';
import { MAX_CHUNK_BYTES } from '../../src/auth/recordings.ts';
import { searchAudit } from '../../src/auth/audit.ts';
import { parseCast, formatCastEvent } from '../../src/api/asciicast.ts';
import type { CastEvent } from '../../src/api/asciicast.ts';

let dataDir: string;
let backend: Backend;
let now = new Date('2026-03-01T10:00:00.000Z');
let admin: AuthClient;
let proxy: AuthClient;
let otherProxy: AuthClient;

const clock = { now: () => now };
const lines = (...events: CastEvent[]): string => events.map((e) => formatCastEvent(e) + '\n').join('');
const code = (c: string) => (err: { code?: string }) => err.code === c;
const start = (extra: Partial<StartRecordingRequest> = {}): StartRecordingRequest => ({
  user: 'alice', node: 'web1', login: 'ubuntu', width: 120, height: 40, kind: 'shell', term: 'xterm-256color', clientAddr: '192.0.2.7', ...extra,
});

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'postern-rec-'));
  backend = await openSqliteBackend({ dataDir });
  const auth = await AuthServer.open({ backend, clock, clusterName: 'c.example' });
  admin = localAuthClient(auth, { role: 'admin', name: 'admin' });
  proxy = localAuthClient(auth, { role: 'proxy', name: 'p1' });
  otherProxy = localAuthClient(auth, { role: 'proxy', name: 'p2' });
  await admin.createUser({ name: 'alice', logins: ['ubuntu'], roles: ['access'], inviteTtlMs: 60_000 });
  await admin.createUser({ name: 'bob', logins: ['ubuntu'], roles: ['access'], inviteTtlMs: 60_000 });
  await admin.createUser({ name: 'carol', logins: ['root'], roles: ['admin'], inviteTtlMs: 60_000 });
});
after(() => backend.close());

test('a proxy starts, appends in order and finishes; the meta, the header and the events read back', async () => {
  const { id, recordInput } = await proxy.startRecording(start({ startedAt: '2026-03-01T10:00:00.000Z' }));
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(recordInput, false, 'record_input is off by default');
  assert.deepEqual(await proxy.appendRecording({ id, seq: 0, events: lines([0.1, 'o', '$ '], [0.5, 'o', 'ls\r\n']) }), { seq: 0, nextSeq: 1, duplicate: false });
  assert.deepEqual(await proxy.appendRecording({ id, seq: 1, events: lines([1.25, 'r', '100x30'], [2, 'o', '\x1b[31mred\x1b[0m é\r\n']) }), { seq: 1, nextSeq: 2, duplicate: false });
  now = new Date('2026-03-01T10:00:03.000Z');
  const meta = await proxy.finishRecording({ id, endedAt: now.toISOString(), exitCode: 3 });
  assert.equal(meta.status, 'complete');
  assert.equal(meta.exitCode, 3);
  assert.equal(meta.durationSec, 3);
  assert.equal(meta.chunks, 2);
  assert.equal(meta.endedAt, '2026-03-01T10:00:03.000Z');
  assert.ok(meta.bytes > 40);
  assert.equal((meta as unknown as Record<string, unknown>).writer, undefined, 'auth-only fields stay at auth');

  const got = await admin.getRecording({ id });
  const cast = parseCast(JSON.stringify(got.header) + '\n' + got.events);
  assert.deepEqual(
    { version: cast.header.version, width: cast.header.width, height: cast.header.height, timestamp: cast.header.timestamp, title: cast.header.title, env: cast.header.env, duration: cast.header.duration },
    { version: 2, width: 120, height: 40, timestamp: Date.parse('2026-03-01T10:00:00Z') / 1000, title: 'alice@web1', env: { TERM: 'xterm-256color' }, duration: 3 },
  );
  assert.equal(cast.header.postern?.login, 'ubuntu');
  assert.equal(cast.header.postern?.status, 'complete');
  assert.equal(cast.header.postern?.exitCode, 3);
  assert.deepEqual(cast.events, [[0.1, 'o', '$ '], [0.5, 'o', 'ls\r\n'], [1.25, 'r', '100x30'], [2, 'o', '\x1b[31mred\x1b[0m é\r\n']]);

  const audit = await searchAudit(backend, { type: 'recording' });
  const startEv = audit.find((e) => e.type === 'recording.start' && e.recording === id);
  const endEv = audit.find((e) => e.type === 'recording.end' && e.recording === id);
  assert.deepEqual([startEv?.user, startEv?.node, startEv?.login, startEv?.addr, startEv?.proxy], ['alice', 'web1', 'ubuntu', '192.0.2.7', 'p1']);
  assert.deepEqual([endEv?.user, endEv?.node, endEv?.login, endEv?.exitCode, endEv?.durationSec], ['alice', 'web1', 'ubuntu', 3, 3]);

  // A finish sent twice (its answer was lost) is answered again, without a second audit event.
  const again = await proxy.finishRecording({ id, exitCode: 3 });
  assert.equal(again.endedAt, meta.endedAt);
  assert.equal((await searchAudit(backend, { type: 'recording.end' })).filter((e) => e.recording === id).length, 1);
});

test('chunk numbers: a re-send is answered again, other events under a stored number and gaps are refused', async () => {
  const { id } = await proxy.startRecording(start());
  const first = lines([0.2, 'o', 'one\r\n']);
  await proxy.appendRecording({ id, seq: 0, events: first });
  assert.deepEqual(await proxy.appendRecording({ id, seq: 0, events: first }), { seq: 0, nextSeq: 1, duplicate: true });
  // The same events without the final newline are the same chunk.
  assert.equal((await proxy.appendRecording({ id, seq: 0, events: first.trimEnd() })).duplicate, true);
  await assert.rejects(proxy.appendRecording({ id, seq: 0, events: lines([0.2, 'o', 'two\r\n']) }), code('ERR_POSTERN_CONFLICT'));
  await assert.rejects(proxy.appendRecording({ id, seq: 2, events: lines([0.3, 'o', 'x']) }), (err: Error & { code?: string; status?: number }) => {
    assert.equal(err.code, 'ERR_POSTERN_RECORDING_SEQ');
    assert.equal(err.status, 409);
    assert.match(err.message, /chunk 2 of recording .* is out of order: the next chunk is 1/);
    return true;
  });
  await assert.rejects(proxy.appendRecording({ id, seq: -1, events: first }), code('ERR_POSTERN_INVALID'));
  await assert.rejects(proxy.appendRecording({ id, seq: 1.5, events: first }), code('ERR_POSTERN_INVALID'));
  assert.equal((await proxy.appendRecording({ id, seq: 1, events: lines([0.3, 'o', 'three']) })).nextSeq, 2);
  await proxy.finishRecording({ id });
  // After the finish: the last chunk may still be re-sent; a new one is refused.
  assert.equal((await proxy.appendRecording({ id, seq: 1, events: lines([0.3, 'o', 'three']) })).duplicate, true);
  await assert.rejects(proxy.appendRecording({ id, seq: 2, events: lines([0.4, 'o', 'late']) }), (err: Error & { code?: string }) => err.code === 'ERR_POSTERN_CONFLICT' && /is finished/.test(err.message));
});

test('events are checked: JSON lines of [time, code, data], times that never go back, a size limit, input only when recorded', async () => {
  const { id } = await proxy.startRecording(start());
  await proxy.appendRecording({ id, seq: 0, events: lines([5, 'o', 'x']) });
  const bad = async (events: string, re: RegExp) =>
    assert.rejects(proxy.appendRecording({ id, seq: 1, events }), (err: Error & { code?: string }) => err.code === 'ERR_POSTERN_INVALID' && re.test(err.message));
  await bad('', /a chunk needs events/);
  await bad('not json\n', /event 1 of the chunk is not JSON/);
  await bad('[6, "o"]\n', /must be \[time, code, data\]/);
  await bad('[6, "x", "y"]\n', /the code must be "o", "i", "r" or "m"/);
  await bad('[-1, "o", "y"]\n', /the time must be a number of seconds/);
  await bad('[6, "o", 7]\n', /the data must be a string/);
  await bad('[6, "r", "wide"]\n', /a resize is "COLSxROWS"/);
  await bad(lines([4, 'o', 'earlier']), /goes back in time \(4s after 5s\)/);
  await bad(lines([6, 'i', 'secret']), /does not keep input: the cluster's record_input was off/);
  await bad(lines([6, 'o', 'x'.repeat(MAX_CHUNK_BYTES)]), /at most 1048576 bytes/);
  // A chunk just under the limit is fine.
  assert.equal((await proxy.appendRecording({ id, seq: 1, events: lines([6, 'o', 'y'.repeat(MAX_CHUNK_BYTES - 32)]) })).nextSeq, 2);

  // With record_input on at the start, input events are kept.
  await admin.updateSettings({ record_input: true });
  try {
    const r = await proxy.startRecording(start());
    assert.equal(r.recordInput, true);
    await proxy.appendRecording({ id: r.id, seq: 0, events: lines([0.1, 'i', 'l'], [0.2, 'o', 'l']) });
    assert.match((await admin.getRecording({ id: r.id })).events, /\[0\.1,"i","l"\]/);
  } finally {
    await admin.updateSettings({ record_input: false });
  }
  await assert.rejects(admin.updateSettings({ record_input: 'yes' as unknown as boolean }), /record_input must be true or false/);
});

test('starts are checked on entry, and only proxies write; only the proxy that started a recording appends to it', async () => {
  const invalid = async (extra: Partial<StartRecordingRequest>, re: RegExp) =>
    assert.rejects(proxy.startRecording(start(extra)), (err: Error & { code?: string }) => err.code === 'ERR_POSTERN_INVALID' && re.test(err.message));
  await invalid({ user: '' }, /user is required/);
  await invalid({ node: 'web\x1b[2J' }, /node must not contain control characters/);
  await invalid({ kind: 'tunnel' as 'shell' }, /kind must be "shell" or "exec"/);
  await invalid({ kind: 'exec' }, /an exec recording needs its command/);
  await invalid({ width: 0 }, /width must be a whole number from 1 to 10000/);
  await invalid({ startedAt: 'yesterday' }, /startedAt must be an ISO 8601 time/);
  await invalid({ term: 'xterm; rm -rf' }, /invalid term/);
  const exec = await proxy.startRecording(start({ kind: 'exec', command: 'uptime', width: undefined, height: undefined, term: undefined }));
  const meta = (await admin.listRecordings({})).find((r) => r.id === exec.id)!;
  assert.deepEqual([meta.kind, meta.command, meta.width, meta.height, meta.term, meta.status], ['exec', 'uptime', 80, 24, 'xterm', 'incomplete']);

  await assert.rejects(admin.startRecording(start()), (err: Error & { code?: string }) => err.code === 'ERR_POSTERN_ACCESS_DENIED' && /a admin may not call startRecording/.test(err.message));
  await assert.rejects(admin.appendRecording({ id: exec.id, seq: 0, events: lines([0, 'o', 'x']) }), code('ERR_POSTERN_ACCESS_DENIED'));
  await assert.rejects(otherProxy.appendRecording({ id: exec.id, seq: 0, events: lines([0, 'o', 'x']) }), (err: Error & { code?: string }) => err.code === 'ERR_POSTERN_ACCESS_DENIED' && /started by another proxy/.test(err.message));
  await assert.rejects(otherProxy.finishRecording({ id: exec.id }), code('ERR_POSTERN_ACCESS_DENIED'));
  await assert.rejects(proxy.appendRecording({ id: '00000000-0000-4000-8000-000000000000', seq: 0, events: lines([0, 'o', 'x']) }), code('ERR_POSTERN_NOT_FOUND'));
  await assert.rejects(proxy.appendRecording({ id: '../users/alice', seq: 0, events: lines([0, 'o', 'x']) }), code('ERR_POSTERN_INVALID'));
});

test('reads: a user sees their own recordings, a user with the admin role and the admin identity see all; others are refused', async () => {
  const bobs = await proxy.startRecording(start({ user: 'bob', node: 'db1' }));
  await proxy.appendRecording({ id: bobs.id, seq: 0, events: lines([0.5, 'o', 'bob was here\r\n']) });
  const alices = await proxy.startRecording(start());

  const ids = (list: Array<{ id: string; user: string }>) => list.map((r) => r.id);
  const forAlice = await proxy.listRecordings({ user: 'alice' });
  assert.ok(forAlice.every((r) => r.user === 'alice') && ids(forAlice).includes(alices.id) && !ids(forAlice).includes(bobs.id));
  assert.deepEqual(ids(await proxy.listRecordings({ user: 'bob' })), [bobs.id]);
  const forCarol = ids(await proxy.listRecordings({ user: 'carol' }));
  assert.ok(forCarol.includes(bobs.id) && forCarol.includes(alices.id), 'carol holds the admin role');
  assert.ok(ids(await admin.listRecordings({})).includes(bobs.id));
  // Newest first, and a limit.
  const all = await admin.listRecordings({});
  assert.deepEqual(all.map((r) => r.startedAt), [...all.map((r) => r.startedAt)].sort().reverse());
  assert.equal((await admin.listRecordings({ limit: 1 })).length, 1);

  await assert.rejects(proxy.listRecordings({}), (err: Error & { code?: string }) => err.code === 'ERR_POSTERN_INVALID' && /a proxy must name the user/.test(err.message));
  await assert.rejects(proxy.getRecording({ id: bobs.id }), code('ERR_POSTERN_INVALID'));
  await assert.rejects(proxy.getRecording({ id: bobs.id, user: 'alice' }), (err: Error & { code?: string; status?: number }) => {
    assert.equal(err.code, 'ERR_POSTERN_ACCESS_DENIED');
    assert.equal(err.status, 403);
    assert.match(err.message, new RegExp(`recording ${bobs.id} is not yours: only the user it recorded and admins may see it`));
    return true;
  });
  await assert.rejects(proxy.readRecording({ id: bobs.id, user: 'alice' }), code('ERR_POSTERN_ACCESS_DENIED'));
  const denied = (await searchAudit(backend, { type: 'access.denied' })).filter((e) => e.recording === bobs.id);
  assert.equal(denied.length, 2);
  assert.equal(denied[0].user, 'alice');

  assert.match((await proxy.getRecording({ id: bobs.id, user: 'bob' })).events, /bob was here/);
  assert.match((await proxy.getRecording({ id: bobs.id, user: 'carol' })).events, /bob was here/);
  const access = (await searchAudit(backend, { type: 'recording.access' })).filter((e) => e.recording === bobs.id);
  // (The fake clock stands still, so the two events share a time: compare them unordered.)
  assert.deepEqual(access.map((e) => `${e.user}:${String(e.owner)}`).sort(), ['bob:bob', 'carol:bob']);

  await assert.rejects(proxy.getRecording({ id: '00000000-0000-4000-8000-000000000000', user: 'carol' }), (err: Error & { code?: string }) => err.code === 'ERR_POSTERN_NOT_FOUND' && /does not exist/.test(err.message));
  await assert.rejects(proxy.getRecording({ id: 'nope', user: 'carol' }), (err: Error & { code?: string }) => err.code === 'ERR_POSTERN_INVALID' && /invalid recording id/.test(err.message));
});

test('readRecording pages through the chunks in order; an incomplete recording reads as a valid file without a duration', async () => {
  const { id } = await proxy.startRecording(start());
  const sent: string[] = [];
  for (let seq = 0; seq < 10; seq++) {
    const data = `chunk ${seq} `.padEnd(200, '.');
    sent.push(data);
    await proxy.appendRecording({ id, seq, events: lines([seq, 'o', data]) });
  }
  const seen: number[] = [];
  let page = await proxy.readRecording({ id, user: 'alice', maxBytes: 500 });
  assert.equal(page.meta.status, 'incomplete');
  assert.equal(page.header.duration, undefined);
  assert.equal(page.header.postern?.status, 'incomplete');
  for (;;) {
    assert.ok(page.chunks.length >= 1 && page.chunks.length <= 2, 'about maxBytes, at least one chunk');
    seen.push(...page.chunks.map((c) => c.seq));
    if (!page.more) break;
    page = await proxy.readRecording({ id, user: 'alice', afterSeq: page.chunks.at(-1)!.seq, maxBytes: 500 });
  }
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  // Only the first page of a read is an access event.
  assert.equal((await searchAudit(backend, { type: 'recording.access' })).filter((e) => e.recording === id).length, 1);
  const whole = await proxy.getRecording({ id, user: 'alice' });
  assert.equal(whole.meta.durationSec, 9);
  assert.deepEqual(parseCast(JSON.stringify(whole.header) + '\n' + whole.events).events.map((e) => e[2]), sent);
  await assert.rejects(proxy.readRecording({ id, user: 'alice', afterSeq: -2 }), code('ERR_POSTERN_INVALID'));
});

test('recordings survive a reopen of the data directory', async () => {
  const { id } = await proxy.startRecording(start({ node: 'persist' }));
  await proxy.appendRecording({ id, seq: 0, events: lines([0.1, 'o', 'kept']) });
  const b2 = await openSqliteBackend({ dataDir });
  try {
    const auth2 = await AuthServer.open({ backend: b2, clock, clusterName: 'c.example' });
    const reader = localAuthClient(auth2, { role: 'admin', name: 'admin' });
    const got = await reader.getRecording({ id });
    assert.equal(got.meta.node, 'persist');
    assert.equal(got.events, lines([0.1, 'o', 'kept']));
  } finally {
    await b2.close();
  }
});

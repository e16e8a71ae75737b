/**
 * The proxy's Recorder against a real AuthServer on SQLite (localAuthClient), with a fake
 * clock and fake timers: when chunks go out (1 s or 64 KiB), their order and numbering,
 * UTF-8 characters split across reads, resize events, input only with record_input, auth
 * failing and coming back (retries, the bounded buffer and the marker of what was lost),
 * and a finish while auth stays away.
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
import { Recorder } from '../../src/proxy/recorder.ts';
import type { RecorderTimers } from '../../src/proxy/recorder.ts';
import type { RecorderAuth } from '../../src/api/proxy-auth.ts';
import { parseCast } from '../../src/api/asciicast.ts';
import type { CastEvent } from '../../src/api/asciicast.ts';
import { ConnectionError, ValidationError } from '../../src/core/errors.ts';
import type { Logger } from '../../src/core/logger.ts';

/** A clock and timers that move only when the test says so. */
class FakeTime implements RecorderTimers {
  ms = Date.parse('2026-04-01T12:00:00.000Z');
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private seq = 0;
  readonly clock = { now: () => new Date(this.ms) };
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.push({ at: this.ms + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  /** Moves time forward, firing timers in order and letting what they start run. */
  async advance(ms: number): Promise<void> {
    const target = this.ms + ms;
    for (;;) {
      await settle();
      const next = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.ms = next.at;
      next.fn();
    }
    this.ms = target;
    await settle();
  }
}

/** Lets promises and I/O callbacks run (SQLite calls are synchronous under their promises). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/** A logger that keeps what it is told. */
function memoryLogger(): Logger & { lines: Array<{ level: string; msg: string; obj: object }> } {
  const lines: Array<{ level: string; msg: string; obj: object }> = [];
  const make = (): Logger => ({
    info: (obj, msg = '') => lines.push({ level: 'info', msg, obj }),
    warn: (obj, msg = '') => lines.push({ level: 'warn', msg, obj }),
    error: (obj, msg = '') => lines.push({ level: 'error', msg, obj }),
    debug: () => {},
    child: () => make(),
  });
  return Object.assign(make(), { lines });
}

/** The real auth calls, with a switch that makes them fail as an unreachable auth does. */
function flakyAuth(real: AuthClient): RecorderAuth & { down: boolean; refuseNext: boolean; calls: number } {
  const wrap = {
    down: false, refuseNext: false, calls: 0,
    startRecording: (req: Parameters<AuthClient['startRecording']>[0]) => real.startRecording(req),
    appendRecording: async (req: Parameters<AuthClient['appendRecording']>[0]) => {
      wrap.calls++;
      if (wrap.down) throw new ConnectionError('cannot reach the auth service at https://127.0.0.1:3025: connect ECONNREFUSED');
      if (wrap.refuseNext) { wrap.refuseNext = false; throw new ValidationError('refused for the test'); }
      return real.appendRecording(req);
    },
    finishRecording: async (req: Parameters<AuthClient['finishRecording']>[0]) => {
      if (wrap.down) throw new ConnectionError('cannot reach the auth service');
      return real.finishRecording(req);
    },
  };
  return wrap;
}

let backend: Backend;
let admin: AuthClient;
let proxy: AuthClient;

before(async () => {
  backend = await openSqliteBackend({ dataDir: mkdtempSync(join(tmpdir(), 'postern-recorder-')) });
  const auth = await AuthServer.open({ backend, clock: { now: () => new Date() }, clusterName: 'c.example' });
  admin = localAuthClient(auth, { role: 'admin', name: 'admin' });
  proxy = localAuthClient(auth, { role: 'proxy', name: 'p1' });
});
after(() => backend.close());

const meta = { user: 'alice', node: 'web1', login: 'ubuntu', kind: 'shell' as const, width: 80, height: 24, term: 'xterm-256color', clientAddr: '127.0.0.1' };

async function stored(id: string): Promise<{ chunks: number; events: CastEvent[]; status: string; lostBytes?: number; exitCode?: number }> {
  const r = await admin.getRecording({ id });
  return { chunks: r.meta.chunks, events: parseCast(JSON.stringify(r.header) + '\n' + r.events).events, status: r.meta.status, lostBytes: r.meta.lostBytes, exitCode: r.meta.exitCode };
}
const output = (events: CastEvent[]): string => events.filter((e) => e[1] === 'o').map((e) => e[2]).join('');

test('a chunk goes out 1 s after its first event, not before; times are seconds since the start', async () => {
  const time = new FakeTime();
  const rec = await Recorder.start(proxy, meta, { clock: time.clock, timers: time });
  await time.advance(250);
  rec.output('hello ');
  await time.advance(500);
  rec.output('world');
  await time.advance(499);
  assert.equal((await stored(rec.id)).chunks, 0, 'nothing is sent before the first event is 1 s old');
  await time.advance(1);
  const s = await stored(rec.id);
  assert.equal(s.chunks, 1);
  assert.deepEqual(s.events, [[0.25, 'o', 'hello '], [0.75, 'o', 'world']]);
  // Quiet: no timer, no empty chunks.
  await time.advance(10_000);
  assert.equal((await stored(rec.id)).chunks, 1);
  rec.output('!');
  await time.advance(1000);
  assert.equal((await stored(rec.id)).chunks, 2);
  const summary = await rec.finish(0);
  assert.deepEqual(summary, { id: rec.id, chunks: 2, lostBytes: 0, complete: true });
  const end = await stored(rec.id);
  assert.equal(end.status, 'complete');
  assert.equal(end.exitCode, 0);
  assert.equal(output(end.events), 'hello world!');
});

test('64 KiB of waiting events go out at once; many chunks arrive in order, numbered without gaps', async () => {
  const time = new FakeTime();
  const rec = await Recorder.start(proxy, meta, { clock: time.clock, timers: time });
  const block = (i: number): string => `${String(i).padStart(5, '0')}:${'x'.repeat(1018)}\r\n`;
  let sent = '';
  for (let i = 0; i < 70; i++) { rec.output(block(i)); sent += block(i); }
  await settle();
  assert.equal((await stored(rec.id)).chunks, 1, '64 KiB went out without waiting for the timer');
  for (let i = 70; i < 400; i++) {
    rec.output(block(i));
    sent += block(i);
    if (i % 50 === 0) await time.advance(300);
  }
  await rec.finish();
  const s = await stored(rec.id);
  assert.ok(s.chunks >= 6, `${s.chunks} chunks`);
  assert.equal(output(s.events), sent, 'every byte, in order');
  const page = await admin.readRecording({ id: rec.id });
  assert.deepEqual(page.chunks.map((c) => c.seq), [...Array(s.chunks).keys()]);
  for (const c of page.chunks) assert.ok(Buffer.byteLength(c.events) < 96 * 1024, 'chunks stay near the flush size');
  // One huge read becomes events of bounded size, still in order.
  const rec2 = await Recorder.start(proxy, meta, { clock: time.clock, timers: time });
  const huge = 'é'.repeat(100_000) + '😀'.repeat(20_000);
  rec2.output(Buffer.from(huge));
  await rec2.finish();
  const s2 = await stored(rec2.id);
  assert.equal(output(s2.events), huge);
  assert.ok(s2.events.every((e) => e[2].length <= 8192));
});

test('UTF-8 characters split across reads stay whole; resizes are "r" events; colours are kept', async () => {
  const time = new FakeTime();
  const rec = await Recorder.start(proxy, meta, { clock: time.clock, timers: time });
  const text = Buffer.from('naïve → 日本語 😀 done', 'utf8');
  // Split every character: one byte per read, each read its own event time.
  for (let i = 0; i < text.length; i++) {
    rec.output(text.subarray(i, i + 1));
    await time.advance(7);
  }
  rec.resize(120, 40);
  rec.resize(120, 40);
  rec.resize(0, 40);
  rec.output(Buffer.from('\x1b[1;32mgreen\x1b[0m\r\n'));
  // A chunk boundary (the 1 s timer) inside a character: the decoder holds the first bytes.
  const euro = Buffer.from('€');
  rec.output(euro.subarray(0, 2));
  await time.advance(1500);
  rec.output(euro.subarray(2));
  await rec.finish();
  const s = await stored(rec.id);
  for (const [, code, data] of s.events) if (code === 'o') assert.ok(!data.includes('\uFFFD'), `no broken character in ${JSON.stringify(data)}`);
  assert.equal(output(s.events), 'naïve → 日本語 😀 done\x1b[1;32mgreen\x1b[0m\r\n€');
  assert.deepEqual(s.events.filter((e) => e[1] === 'r'), [[s.events.find((e) => e[1] === 'r')![0], 'r', '120x40']], 'one resize: repeated and impossible sizes are skipped');
  const times = s.events.map((e) => e[0]);
  assert.deepEqual(times, [...times].sort((a, b) => a - b));
  assert.ok(s.chunks >= 2);
  // A character cut off by the end of the session is not lost silently: it is a replacement character.
  const rec2 = await Recorder.start(proxy, meta, { clock: time.clock, timers: time });
  rec2.output(Buffer.from([0x61, 0xe2, 0x82]));
  await rec2.finish();
  assert.equal(output((await stored(rec2.id)).events), 'a\uFFFD');
});

test('input is kept only when the cluster records input', async () => {
  const time = new FakeTime();
  const off = await Recorder.start(proxy, meta, { clock: time.clock, timers: time });
  assert.equal(off.recordInput, false);
  off.input('secret\r');
  off.output('$ ');
  await off.finish();
  assert.deepEqual((await stored(off.id)).events.map((e) => e[1]), ['o']);

  await admin.updateSettings({ record_input: true });
  try {
    const on = await Recorder.start(proxy, meta, { clock: time.clock, timers: time });
    assert.equal(on.recordInput, true);
    on.input(Buffer.from('ls ü'.slice(0, 3)));
    on.input(Buffer.from('ü').subarray(0, 1));
    on.input(Buffer.from('ü').subarray(1));
    await on.finish();
    const events = (await stored(on.id)).events;
    assert.equal(events.filter((e) => e[1] === 'i').map((e) => e[2]).join(''), 'ls ü');
  } finally {
    await admin.updateSettings({ record_input: false });
  }
});

test('auth unreachable, then back: retries with backoff, the same chunk numbers, nothing lost, in order', async () => {
  const time = new FakeTime();
  const log = memoryLogger();
  const auth = flakyAuth(proxy);
  const rec = await Recorder.start(auth, meta, { clock: time.clock, timers: time, log });
  rec.output('before ');
  await time.advance(1000);
  assert.equal((await stored(rec.id)).chunks, 1);
  auth.down = true;
  const callsBefore = auth.calls;
  for (let i = 0; i < 5; i++) { rec.output(`during${i} `); await time.advance(1000); }
  assert.equal((await stored(rec.id)).chunks, 1, 'nothing reached auth');
  const tries = auth.calls - callsBefore;
  assert.ok(tries >= 3 && tries <= 8, `${tries} tries in 5 s: backoff, not a busy loop`);
  assert.ok(rec.stats().bufferedBytes > 0);
  assert.equal(log.lines.filter((l) => l.level === 'warn').length, 1, 'one warning while it fails');
  auth.down = false;
  rec.output('after');
  await time.advance(6000);
  const s = await stored(rec.id);
  assert.equal(output(s.events), 'before during0 during1 during2 during3 during4 after');
  assert.equal(rec.stats().bufferedBytes, 0);
  assert.ok(log.lines.some((l) => l.level === 'info' && /reachable again/.test(l.msg)));
  const summary = await rec.finish(0);
  assert.equal(summary.complete, true);
  assert.equal(summary.lostBytes, 0);
  assert.equal(s.events.some((e) => e[1] === 'm'), false);
});

test('a full buffer drops new data, logs it, and marks the gap in the stream once auth is back', async () => {
  const time = new FakeTime();
  const log = memoryLogger();
  const auth = flakyAuth(proxy);
  const rec = await Recorder.start(auth, meta, { clock: time.clock, timers: time, log, maxBufferBytes: 4096, flushBytes: 1024 });
  auth.down = true;
  rec.output('kept:' + 'a'.repeat(2000));
  await time.advance(1000);
  for (let i = 0; i < 10; i++) { rec.output('b'.repeat(1000)); await time.advance(100); }
  const lostSoFar = rec.stats().lostBytes;
  assert.ok(lostSoFar >= 7000, `${lostSoFar} bytes dropped`);
  assert.ok(rec.stats().bufferedBytes <= 4096, 'memory stays bounded');
  assert.equal(log.lines.filter((l) => l.level === 'error' && /buffer is full/.test(l.msg)).length, 1, 'logged once, not per event');
  auth.down = false;
  await time.advance(6000);
  rec.output('resumed');
  const summary = await rec.finish(0);
  assert.equal(summary.lostBytes, lostSoFar);
  const s = await stored(rec.id);
  assert.equal(s.lostBytes, lostSoFar, 'the meta says how much is missing');
  const marker = s.events.find((e) => e[1] === 'm');
  assert.ok(marker, 'a marker event');
  assert.match(marker[2], new RegExp(`^postern: ${lostSoFar} bytes of this session are missing from 1\\.\\d+s to 1\\.\\d+s: the proxy could not deliver them to auth$`));
  const o = output(s.events);
  assert.ok(o.startsWith('kept:aaaa') && o.endsWith('resumed'));
  assert.ok(log.lines.some((l) => l.level === 'warn' && /resumes after dropping/.test(l.msg)));
});

test('a chunk auth refuses for good is counted as lost and marked; the next chunks keep their numbers', async () => {
  const time = new FakeTime();
  const log = memoryLogger();
  const auth = flakyAuth(proxy);
  const rec = await Recorder.start(auth, meta, { clock: time.clock, timers: time, log });
  auth.refuseNext = true;
  rec.output('refused');
  await time.advance(1000);
  rec.output('stored');
  await time.advance(1000);
  const summary = await rec.finish();
  assert.equal(summary.lostBytes, 7);
  const s = await stored(rec.id);
  assert.equal(output(s.events), 'stored');
  assert.match(s.events.find((e) => e[1] === 'm')![2], /7 bytes of this session are missing: auth refused them \(refused for the test\)/);
  assert.ok(log.lines.some((l) => l.level === 'error' && /refused a recording chunk/.test(l.msg)));
});

test('finish while auth stays away gives up after its deadline: the recording keeps what was stored, incomplete, and the loss is logged', async () => {
  const time = new FakeTime();
  const log = memoryLogger();
  const auth = flakyAuth(proxy);
  const rec = await Recorder.start(auth, meta, { clock: time.clock, timers: time, log, finishTimeoutMs: 10_000 });
  rec.output('stored ');
  await time.advance(1000);
  auth.down = true;
  rec.output('never stored');
  let done: Awaited<ReturnType<Recorder['finish']>> | undefined;
  void rec.finish(0).then((s) => { done = s; });
  await time.advance(9000);
  assert.equal(done, undefined, 'still trying before the deadline');
  await time.advance(1500);
  assert.deepEqual(done, { id: rec.id, chunks: 1, lostBytes: 12, complete: false });
  const s = await stored(rec.id);
  assert.equal(s.status, 'incomplete');
  assert.equal(output(s.events), 'stored ');
  assert.ok(log.lines.some((l) => l.level === 'error' && /the end of the recording is lost/.test(l.msg)));
  // Output after finish is ignored, and a second finish answers the same.
  rec.output('late');
  assert.equal(await rec.finish(), done);
});

test('start fails when auth refuses: the session cannot be recorded', async () => {
  await assert.rejects(Recorder.start(proxy, { ...meta, kind: 'exec' }), /an exec recording needs its command/);
  const time = new FakeTime();
  const exec = await Recorder.start(proxy, { ...meta, kind: 'exec', command: 'uname -a' }, { clock: time.clock, timers: time });
  exec.output('Linux\n');
  await exec.finish(0);
  const r = await admin.getRecording({ id: exec.id });
  assert.equal(r.header.command, 'uname -a');
  assert.equal(r.meta.startedAt, new Date(Date.parse('2026-04-01T12:00:00.000Z')).toISOString(), 'the start is the recorder clock\'s');
});

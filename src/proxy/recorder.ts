/**
 * The proxy's half of session recording: what the recording proxy mode and the web
 * terminal feed a session's bytes into. It turns them into asciicast v2 events (times in
 * seconds since the start, from an injectable clock) and streams them to auth in numbered
 * chunks (src/auth/recordings.ts):
 *
 *   const rec = await Recorder.start(auth, { user, node, login, kind: 'shell', width, height, term, clientAddr });
 *   channel.on('data', (d) => { rec.output(d); ... });   // what the node sends (stdout and stderr)
 *   rec.input(keys);                                      // what the user types; kept only with record_input
 *   rec.resize(cols, rows);                               // window-change
 *   await rec.finish(exitCode);                           // at the end: delivers the rest, marks it complete
 *
 * A chunk goes out after at most `flushIntervalMs` (1 s) or once `flushBytes` (64 KiB) are
 * waiting, whichever comes first, one at a time and in order. A failed send is retried with
 * backoff and the same number (auth accepts a re-send). While auth is unreachable up to
 * `maxBufferBytes` (8 MiB) wait in memory; beyond that, new events are dropped, counted and
 * logged, and a marker event in the stream says how much is missing and when. Input and
 * output are decoded with a StringDecoder each, so a character split across two reads is
 * never split across two events.
 */
import { StringDecoder } from 'node:string_decoder';
import type { StartRecordingRequest } from '../api/auth-types.ts';
import type { RecorderAuth } from '../api/proxy-auth.ts';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import { silentLogger } from '../core/logger.ts';
import { formatCastEvent } from '../api/asciicast.ts';
import type { CastEventCode } from '../api/asciicast.ts';

/** How the recorder waits; tests pass fake timers driven with their fake clock. */
export interface RecorderTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Tuning and the outside world of a Recorder; every field has a default. */
export interface RecorderOptions {
  clock?: Clock;
  timers?: RecorderTimers;
  log?: Logger;
  /** A chunk goes out at most this long after its first event (1000). */
  flushIntervalMs?: number;
  /** ...or as soon as this many bytes of event lines wait (64 KiB). */
  flushBytes?: number;
  /** What may wait in memory while auth is unreachable before events are dropped (8 MiB). */
  maxBufferBytes?: number;
  /** Backoff between retries: from this (250 ms), doubling, up to retryMaxMs (5 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** How long finish() keeps trying to deliver before it gives up and logs the loss (30 s). */
  finishTimeoutMs?: number;
}

/** What a session tells the recorder at its start; `startedAt` defaults to the clock's now. */
export type RecorderStart = StartRecordingRequest;

/** What a finished recorder did. */
export interface RecorderSummary {
  id: string;
  /** Chunks auth stored. */
  chunks: number;
  /** Bytes of the session's data that are not in the recording (dropped or undeliverable). */
  lostBytes: number;
  /** Whether auth marked the recording complete. */
  complete: boolean;
}

/** The longest data of one event, in UTF-16 units: keeps every chunk far below auth's 1 MiB limit. */
const MAX_EVENT_CHARS = 8192;

const realTimers: RecorderTimers = {
  setTimeout: (fn, ms) => {
    const h = setTimeout(fn, ms);
    // A recorder never keeps a process alive by itself: the session it records does.
    h.unref();
    return h;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Whether an error from auth may go away by itself (network, 5xx, busy) or never will (4xx). */
function retryable(err: unknown): boolean {
  const status = (err as { status?: unknown }).status;
  if (typeof status !== 'number') return true;
  return status >= 500 || status === 408 || status === 429;
}

interface Outgoing {
  events: string;
  /** UTF-8 bytes of `events`. */
  bytes: number;
  /** Bytes of session data in it, for the loss count if it is never stored. */
  dataBytes: number;
}

/** Records one session to auth; see the file's header for how. */
export class Recorder {
  /** The recording's id at auth. */
  readonly id: string;
  /** Whether `input()` keeps anything: the cluster's `record_input` at the start. */
  readonly recordInput: boolean;

  private readonly auth: RecorderAuth;
  private readonly clock: Clock;
  private readonly timers: RecorderTimers;
  private readonly log: Logger;
  private readonly flushIntervalMs: number;
  private readonly flushBytes: number;
  private readonly maxBufferBytes: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly finishTimeoutMs: number;
  private readonly startMs: number;

  private readonly outDecoder = new StringDecoder('utf8');
  private readonly inDecoder = new StringDecoder('utf8');
  private width: number;
  private height: number;
  private lastT = 0;

  /** Event lines not yet in a chunk. */
  private pending: string[] = [];
  private pendingBytes = 0;
  private pendingDataBytes = 0;
  private flushTimer: unknown;
  /** Chunks waiting to be stored, oldest first; the first is in flight while `sending`. */
  private readonly outbox: Outgoing[] = [];
  private outboxBytes = 0;
  private nextSeq = 0;
  private sending = false;
  private retryTimer: unknown;
  private failures = 0;
  private idleWaiters: Array<() => void> = [];

  /** While events are being dropped: the times of the first and the last, and how much. */
  private dropping: { sinceT: number; untilT: number; bytes: number } | undefined;
  private lost = 0;
  private closed = false;
  private abandoned = false;
  private finishing: Promise<RecorderSummary> | undefined;

  private constructor(auth: RecorderAuth, id: string, recordInput: boolean, start: RecorderStart, startMs: number, opts: RecorderOptions) {
    this.auth = auth;
    this.id = id;
    this.recordInput = recordInput;
    this.clock = opts.clock ?? systemClock;
    this.timers = opts.timers ?? realTimers;
    this.log = (opts.log ?? silentLogger).child({ recording: id });
    this.flushIntervalMs = opts.flushIntervalMs ?? 1000;
    this.flushBytes = opts.flushBytes ?? 64 * 1024;
    this.maxBufferBytes = opts.maxBufferBytes ?? 8 * 1024 * 1024;
    this.retryMinMs = opts.retryMinMs ?? 250;
    this.retryMaxMs = opts.retryMaxMs ?? 5000;
    this.finishTimeoutMs = opts.finishTimeoutMs ?? 30_000;
    this.startMs = startMs;
    this.width = start.width ?? 80;
    this.height = start.height ?? 24;
  }

  /**
   * Starts a recording at auth and returns its recorder. Rejects when auth refuses or cannot
   * be reached: the session cannot be recorded, and the caller decides (recording mode
   * refuses the session rather than carry it unrecorded).
   */
  static async start(auth: RecorderAuth, meta: RecorderStart, opts: RecorderOptions = {}): Promise<Recorder> {
    const startedAt = meta.startedAt ?? (opts.clock ?? systemClock).now().toISOString();
    const r = await auth.startRecording({ ...meta, startedAt });
    return new Recorder(auth, r.id, r.recordInput, meta, Date.parse(startedAt), opts);
  }

  /** What the node sent (stdout and stderr of the session). */
  output(data: Buffer | string): void {
    if (this.closed) return;
    this.text('o', this.outDecoder.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data));
  }

  /** What the user typed; dropped (by policy, not a loss) unless the cluster records input. */
  input(data: Buffer | string): void {
    if (this.closed || !this.recordInput) return;
    this.text('i', this.inDecoder.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data));
  }

  /** The terminal's new size; repeated or impossible sizes are skipped. */
  resize(cols: number, rows: number): void {
    if (this.closed) return;
    const ok = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 10_000;
    if (!ok(cols) || !ok(rows)) { this.log.debug({ cols, rows }, 'ignoring an impossible terminal size'); return; }
    if (cols === this.width && rows === this.height) return;
    this.width = cols;
    this.height = rows;
    this.push('r', `${cols}x${rows}`, 0);
  }

  /** A marker in the stream (asciicast "m"), e.g. who joined the session. */
  marker(label: string): void {
    if (this.closed) return;
    this.push('m', label, 0);
  }

  /** Sends what waits now, and resolves once auth stored everything sent so far (or gave up on it). */
  async flush(): Promise<void> {
    this.seal();
    await this.idle();
  }

  /** How many chunks auth stored so far, and what waits or was lost. */
  stats(): { chunks: number; bufferedBytes: number; lostBytes: number } {
    return { chunks: this.nextSeq, bufferedBytes: this.pendingBytes + this.outboxBytes, lostBytes: this.lost };
  }

  /**
   * Ends the recording: the rest of the decoders, the last chunk, then finishRecording with
   * the exit status. Never rejects; after `finishTimeoutMs` without auth it logs what is
   * lost and resolves with `complete: false` (the recording stays incomplete at auth).
   */
  finish(exitCode?: number): Promise<RecorderSummary> {
    this.finishing ??= this.finishNow(exitCode);
    return this.finishing;
  }

  private async finishNow(exitCode: number | undefined): Promise<RecorderSummary> {
    this.text('o', this.outDecoder.end());
    if (this.recordInput) this.text('i', this.inDecoder.end());
    this.endDrop();
    this.closed = true;
    this.seal();
    let timedOut = false;
    const deadline = this.timers.setTimeout(() => { timedOut = true; this.wakeIdle(); }, this.finishTimeoutMs);
    await this.idle(() => timedOut);
    let complete = false;
    if (this.outbox.length > 0) {
      this.abandon('auth was unreachable when the session ended');
    } else {
      for (;;) {
        try {
          await this.auth.finishRecording({
            id: this.id, endedAt: this.clock.now().toISOString(),
            ...(exitCode !== undefined ? { exitCode } : {}), ...(this.lost > 0 ? { lostBytes: this.lost } : {}),
          });
          complete = true;
          break;
        } catch (err) {
          if (!retryable(err) || timedOut) {
            this.log.error({ err }, 'could not mark the recording complete; it stays incomplete');
            break;
          }
          await new Promise<void>((resolve) => this.timers.setTimeout(resolve, this.backoff()));
          this.failures++;
        }
      }
    }
    this.timers.clearTimeout(deadline);
    return { id: this.id, chunks: this.nextSeq, lostBytes: this.lost, complete };
  }

  // ---- events ----

  private now(): number {
    const t = Math.max(this.lastT, (this.clock.now().getTime() - this.startMs) / 1000);
    this.lastT = t;
    return t;
  }

  /** Decoded text as events of bounded size, never splitting a surrogate pair. */
  private text(code: 'o' | 'i', s: string): void {
    let i = 0;
    while (i < s.length) {
      let end = Math.min(s.length, i + MAX_EVENT_CHARS);
      const c = s.charCodeAt(end - 1);
      if (end < s.length && c >= 0xd800 && c <= 0xdbff) end--;
      const part = s.slice(i, end);
      this.push(code, part, Buffer.byteLength(part, 'utf8'));
      i = end;
    }
  }

  private push(code: CastEventCode, data: string, dataBytes: number): void {
    const t = this.now();
    const line = formatCastEvent([t, code, data]);
    const size = Buffer.byteLength(line, 'utf8') + 1;
    if (this.pendingBytes + this.outboxBytes + size > this.maxBufferBytes) {
      if (!this.dropping) {
        this.dropping = { sinceT: t, untilT: t, bytes: 0 };
        this.log.error({ bufferedBytes: this.pendingBytes + this.outboxBytes }, 'auth is unreachable and the recording buffer is full: dropping session data until it recovers');
      }
      this.dropping.bytes += dataBytes;
      this.dropping.untilT = t;
      this.lost += dataBytes;
      return;
    }
    this.endDrop();
    this.add(line, size, dataBytes);
  }

  /** After a drop, the marker that says what is missing (it may exceed the buffer: it is small). */
  private endDrop(): void {
    if (!this.dropping) return;
    const { sinceT, untilT, bytes } = this.dropping;
    this.dropping = undefined;
    this.log.warn({ lostBytes: bytes, fromSec: sinceT, toSec: untilT }, 'recording resumes after dropping session data');
    this.addMarker(`postern: ${bytes} bytes of this session are missing from ${sinceT.toFixed(3)}s to ${untilT.toFixed(3)}s: the proxy could not deliver them to auth`);
  }

  private addMarker(label: string): void {
    const line = formatCastEvent([this.now(), 'm', label]);
    this.add(line, Buffer.byteLength(line, 'utf8') + 1, 0);
  }

  private add(line: string, size: number, dataBytes: number): void {
    this.pending.push(line);
    this.pendingBytes += size;
    this.pendingDataBytes += dataBytes;
    if (this.pendingBytes >= this.flushBytes) this.seal();
    else this.flushTimer ??= this.timers.setTimeout(() => { this.flushTimer = undefined; this.seal(); }, this.flushIntervalMs);
  }

  // ---- chunks ----

  /** Closes the pending events into a chunk and sends it after those before. */
  private seal(): void {
    if (this.flushTimer !== undefined) { this.timers.clearTimeout(this.flushTimer); this.flushTimer = undefined; }
    if (this.pending.length === 0) return;
    const events = this.pending.join('\n') + '\n';
    this.outbox.push({ events, bytes: this.pendingBytes, dataBytes: this.pendingDataBytes });
    this.outboxBytes += this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingDataBytes = 0;
    void this.pump();
  }

  private backoff(): number {
    return Math.min(this.retryMaxMs, this.retryMinMs * 2 ** Math.min(this.failures, 20));
  }

  /** Sends the outbox in order, one chunk at a time; the only place that talks to auth about chunks. */
  private async pump(): Promise<void> {
    if (this.sending || this.retryTimer !== undefined) return;
    this.sending = true;
    try {
      while (this.outbox.length > 0 && !this.abandoned) {
        const chunk = this.outbox[0];
        const seq = this.nextSeq;
        try {
          await this.auth.appendRecording({ id: this.id, seq, events: chunk.events });
          if (this.abandoned) return;
          this.nextSeq++;
          this.shiftOutbox(chunk);
          if (this.failures > 0) this.log.info({ failures: this.failures, seq }, 'auth is reachable again; the recording goes on');
          this.failures = 0;
        } catch (err) {
          if (this.abandoned) return;
          if (retryable(err)) {
            if (this.failures === 0) this.log.warn({ err, seq }, 'could not send a recording chunk to auth; retrying');
            const wait = this.backoff();
            this.failures++;
            this.retryTimer = this.timers.setTimeout(() => { this.retryTimer = undefined; void this.pump(); }, wait);
            return;
          }
          // Auth refused the chunk for good: it is lost, and the stream says so.
          this.shiftOutbox(chunk);
          this.lost += chunk.dataBytes;
          this.log.error({ err, seq, lostBytes: chunk.dataBytes }, 'auth refused a recording chunk; its data is lost');
          this.closedMarker(`postern: ${chunk.dataBytes} bytes of this session are missing: auth refused them (${(err as Error).message})`);
        }
      }
    } finally {
      this.sending = false;
      if (this.outbox.length === 0 || this.abandoned) this.wakeIdle();
    }
  }

  /** A marker even after finish began (the loss must be said while it can still be sent). */
  private closedMarker(label: string): void {
    this.addMarker(label);
    if (this.closed) this.seal();
  }

  private shiftOutbox(chunk: Outgoing): void {
    this.outbox.shift();
    this.outboxBytes -= chunk.bytes;
  }

  /** Gives up on what waits: counts it as lost and logs it. */
  private abandon(reason: string): void {
    this.abandoned = true;
    let lostNow = this.pendingDataBytes;
    for (const c of this.outbox) lostNow += c.dataBytes;
    this.lost += lostNow;
    this.log.error({ lostBytes: lostNow, chunks: this.outbox.length, storedChunks: this.nextSeq }, `the end of the recording is lost: ${reason}`);
    this.outbox.length = 0;
    this.outboxBytes = 0;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.retryTimer !== undefined) { this.timers.clearTimeout(this.retryTimer); this.retryTimer = undefined; }
  }

  /** Resolves when nothing waits to be sent (or `stop()` says to stop waiting). */
  private idle(stop: () => boolean = () => false): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (stop() || this.abandoned || (this.outbox.length === 0 && this.pending.length === 0)) resolve();
        else this.idleWaiters.push(check);
      };
      check();
    });
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

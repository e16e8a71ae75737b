/**
 * The one bidirectional pipe of Postern: every relay (the TLS tunnel, the SSH listener's
 * `proxy:` subsystem and `direct-tcpip` channels, the recording proxy's forwards, the
 * client's `-L`/`-R` forwards) copies bytes both ways through {@link pipeBoth}, so its
 * speed is tuned in this one place.
 * It works on any Duplex: net and TLS sockets, ssh2 channels (whose destroy() sends EOF
 * and CLOSE).
 *
 * Why it is more than `a.pipe(b)` (docs/benchmarks.md has the numbers):
 * - It corks the destination for the rest of the event loop's turn, so the chunks one poll
 *   phase delivers leave in one `writev`.
 * - Once a stream has carried a bulk transfer, its socket reads go into buffers from a
 *   shared pool instead of a fresh ArrayBuffer each: at a few hundred MB/s those
 *   allocations made V8 run a full mark-compact every 15-30 MiB, half the relay's CPU.
 *   Where buffers stay fresh (ssh2's packets), the young generation is collected before
 *   they pile up ({@link noteRelayed}).
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let heapTuned = false;

/** V8's collection of the young generation, once the proxy role asked for it. */
let scavenge: (() => void) | undefined;

/**
 * Tunes V8's garbage collector for a process that relays bytes (the proxy). Every socket
 * read and every TLS record arrives in a fresh ArrayBuffer, and V8 by default starts a full
 * mark-compact each time 64 MB of such external memory has been allocated since the last
 * one, however little of it is alive: a relay paid one full collection of its whole heap
 * per 15-30 MiB carried, 30-40% of its CPU (docs/benchmarks.md). Counting external memory in
 * the global heap limit, as V8's own flag does, spaces them by the heap's growth factor
 * instead; {@link noteRelayed} frees the dead buffers young. Called once, at the start of
 * the proxy role.
 */
export function tuneHeapForRelay(): void {
  if (heapTuned) return;
  heapTuned = true;
  setFlagsFromString('--external-memory-accounted-in-global-limit');
  try {
    // `gc` is a global of contexts made after --expose-gc; the main one stays as it was.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (options: { type: 'minor' }) => void;
    scavenge = () => gc({ type: 'minor' });
  } catch {
    scavenge = undefined;
  }
}

/** External memory grown by this much since the last scavenge asks for the next one. */
export const SCAVENGE_AFTER_EXTERNAL_BYTES = 4 * 1024 * 1024;
const CHECK_EVERY_BYTES = 256 * 1024;
let uncheckedBytes = 0;
let externalFloor = 0;

/**
 * Counts bytes a pipe carried in fresh buffers (an ssh2 channel's packets, a socket not yet
 * read into the pool). Such a buffer dies within a turn, but V8 frees it only when it
 * collects the young generation, which it starts when small JavaScript objects fill it:
 * on a relay, a handful per 64 KiB, so rarely. The dead buffers piled up as external memory
 * until they met the global limit, and V8 then marked and compacted the whole heap (55-80
 * times per GiB on `ssh -J`, more than doubling its CPU; docs/benchmarks.md). Every 256 KiB
 * this looks at V8's external memory and, once it stands {@link SCAVENGE_AFTER_EXTERNAL_BYTES}
 * above the lowest it was since the last collection, collects the young generation: a
 * fraction of a millisecond that frees them all. (The freed buffers are subtracted by a
 * concurrent sweeper a little later, hence the lowest value seen and not the value right
 * after; memory that stays alive raises that floor.)
 */
function noteRelayed(bytes: number): void {
  if (!scavenge) return;
  uncheckedBytes += bytes;
  if (uncheckedBytes < CHECK_EVERY_BYTES) return;
  uncheckedBytes = 0;
  const external = getHeapStatistics().external_memory;
  if (external < externalFloor) externalFloor = external;
  if (external - externalFloor < SCAVENGE_AFTER_EXTERNAL_BYTES) return;
  scavenge();
  externalFloor = external;
}

/** How many bytes may wait in a destination before the pipe stops reading its source. */
export const MAX_QUEUED_BYTES = 256 * 1024;

/** Bytes a stream carries in fresh buffers before its reads move to pooled ones. */
export const BULK_AFTER_BYTES = 512 * 1024;

/**
 * Read buffers shared by every pipe of the process, by size: 16 KiB for TLS sockets (one
 * record of plaintext at most per read) and 64 KiB for plain sockets (Node's own read size).
 * A buffer goes back when the write it fed has completed; what is in flight at once is
 * bounded by {@link MAX_QUEUED_BYTES} per pipe, what is kept idle by POOL_KEEP per size.
 */
const POOL_KEEP = 64;
const pools = new Map<number, Buffer[]>();

function takeBuffer(size: number): Buffer {
  return pools.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
}

/** Tests fill a buffer given back with this byte, so a view kept past its release shows. */
let poison: number | undefined;

/** Fills every read buffer given back to the pool with `byte` (undefined: off); for tests. */
export function poisonReleasedBuffers(byte: number | undefined): void {
  poison = byte;
}

function giveBack(buf: Buffer): void {
  if (poison !== undefined) buf.fill(poison);
  let free = pools.get(buf.length);
  if (!free) pools.set(buf.length, free = []);
  if (free.length < POOL_KEEP) free.push(buf);
}

/** The idle buffers of the read pool, by size (for tests). */
export function readPoolSizes(): Record<number, number> {
  return Object.fromEntries([...pools].map(([size, free]) => [size, free.length]));
}

/** What Node keeps on a socket for its `onread` option (net.connect's reused read buffer). */
interface UserBufferKeys { buffer: symbol; generator: symbol; callback: symbol }

interface SocketInternals {
  _handle?: { useUserBuffer?: (buf: Uint8Array) => void } | null;
  encrypted?: boolean;
  readableLength: number;
  [key: symbol]: unknown;
}

let keys: UserBufferKeys | null | undefined;

/**
 * Node gives a socket a reused read buffer only when it connects it (`onread`), not when a
 * server accepts it nor for TLS; the same machinery serves any socket whose three fields
 * are set and whose handle is given the buffer. Found by the fields' names once; when a
 * Node version lacks them, pipes keep Node's fresh buffer per read (slower, still correct).
 */
function userBufferKeys(sock: SocketInternals): UserBufferKeys | null {
  if (keys !== undefined) return keys;
  const byName = new Map(Object.getOwnPropertySymbols(sock).map((s) => [s.description, s]));
  const [buffer, generator, callback] = [byName.get('kBuffer'), byName.get('kBufferGen'), byName.get('kBufferCb')];
  keys = buffer && generator && callback ? { buffer, generator, callback } : null;
  return keys;
}

/**
 * Gives `src`'s reads buffers of our choosing, each taken from the pool of `size`: `onRead`
 * gets the bytes read (a view of the pooled buffer) and that buffer, and returns false to
 * stop reading (the socket's own pause/resume start it again). Returns false, changing
 * nothing, when `src` is not a socket Node can read so.
 */
function readIntoPool(src: Readable, size: number, onRead: (chunk: Buffer, buf: Buffer) => boolean): boolean {
  const sock = src as unknown as SocketInternals;
  const handle = sock._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function' || sock.readableLength !== 0) return false;
  const k = userBufferKeys(sock);
  if (!k || !(k.buffer in sock)) return false;
  const first = takeBuffer(size);
  sock[k.buffer] = first;
  sock[k.generator] = () => takeBuffer(size);
  sock[k.callback] = (nread: number, buf: Buffer): boolean => onRead(buf.subarray(0, nread), buf);
  handle.useUserBuffer(first);
  return true;
}

/** A pooled read buffer lent out: back to the pool when the last holder lets go. */
interface Loan { buf: Buffer; holders: number }

function letGo(loan: Loan): void {
  if (--loan.holders === 0) giveBack(loan.buf);
}

/** The read buffer an SSH connection is parsing right now, if it is a pooled one. */
let parsing: Loan | null = null;

/**
 * For a chunk an ssh2 channel emits while its connection parses a pooled read: holds the
 * read buffer until the returned function is called (when the chunk has been written).
 * Undefined for a chunk that is the channel's own (ssh2 copied it, or the read was fresh).
 */
function holdBorrowed(chunk: Buffer): (() => void) | undefined {
  const loan = parsing;
  if (!loan || chunk.buffer !== loan.buf.buffer) return undefined;
  loan.holders++;
  return () => { letGo(loan); };
}

/** What of an ssh2 connection {@link readSshIntoPool} uses (patch 011 adds parseBorrowed). */
interface SshConnection {
  _protocol?: { parseBorrowed?: (chunk: Buffer) => void };
  emit(event: 'error', err: Error): boolean;
}

/**
 * Moves the reads of the socket under an ssh2 connection into pooled buffers once it has
 * carried {@link BULK_AFTER_BYTES}, as {@link corkedPipe} does for plain sockets. ssh2 decrypts
 * in place and hands out views of what it read, so it parses these reads with
 * `parseBorrowed` (ssh2 patch 011): it copies whatever would outlive the call, except the
 * channel data a pipe takes at once; the pipe holds the buffer until it has written that
 * data ({@link holdBorrowed}). The reads reach ssh2's parser directly, not through the
 * socket's 'data' events.
 */
export function readSshIntoPool(sock: Readable & { end(): void; writable: boolean }, conn: SshConnection): void {
  const proto = conn._protocol;
  if (typeof proto?.parseBorrowed !== 'function') return;
  let carried = 0;
  const parse = (chunk: Buffer, buf: Buffer): boolean => {
    const loan: Loan = { buf, holders: 1 };
    parsing = loan;
    try {
      proto.parseBorrowed!(chunk);
    } catch (err) {
      // As ssh2's own reader does with a chunk it cannot parse.
      conn.emit('error', err as Error);
      try { if (sock.writable) sock.end(); } catch { /* already gone */ }
    } finally {
      parsing = null;
      letGo(loan);
    }
    return true;
  };
  const count = (d: Buffer): void => {
    carried += d.length;
    if (carried < BULK_AFTER_BYTES) return;
    sock.off('data', count);
    // Switched once this read has reached ssh2's own listener, so it is not parsed twice.
    queueMicrotask(() => {
      if (sock.destroyed) return;
      const ssh2Readers = sock.listeners('data');
      if (!readIntoPool(sock, 64 * 1024, parse)) return;
      for (const l of ssh2Readers) sock.off('data', l as (d: Buffer) => void);
    });
  };
  sock.on('data', count);
}

/**
 * Copies `src` to `dst` with backpressure, corking `dst` until the end of this turn of the
 * event loop (its check phase, `setImmediate`): every chunk the poll phase delivers — one
 * per TLS record, one per SSH packet, one per socket read — leaves in one `writev` instead
 * of one `write()` each. A lone chunk (a keystroke) is not held back: the check phase
 * follows the poll phase that delivered it, with no timer in between. `dst` ends when `src`
 * ends (half-close is passed on; `end()` flushes what is corked), unless `end` is false:
 * then what is corked is written at once and `dst` stays open (a process's stdout).
 * After {@link BULK_AFTER_BYTES}, a socket `src` is read into pooled buffers.
 */
export function corkedPipe(src: Readable, dst: Writable, options: { end?: boolean } = {}): void {
  // Corking pays only where the stream can write many chunks at once (sockets). An ssh2
  // channel writes each chunk as its own packets anyway, and its connection corks its
  // socket per turn itself (patch 010); corking the channel too would delay by a turn.
  const batches = typeof (dst as Writable & { _writev?: unknown })._writev === 'function';
  let corked = false;
  let waiting = false;
  let carried = 0;
  let pooled = false;
  const flush = (): void => {
    corked = false;
    if (!dst.destroyed) dst.uncork();
  };
  const resume = (): void => {
    waiting = false;
    src.resume();
  };
  // Writes a chunk; false when src must wait for dst to drain (it has then been paused).
  const send = (d: Buffer, done?: () => void): boolean => {
    if (batches && !corked) {
      corked = true;
      dst.cork();
      setImmediate(flush);
    }
    // Past Node's 16 KiB high-water mark a write returns false, but stopping there would
    // stop and restart reading for every 64 KiB read; the queue is bounded here instead.
    if (!dst.write(d, done) && dst.writableLength >= MAX_QUEUED_BYTES) {
      if (!waiting) {
        waiting = true;
        src.pause();
        dst.once('drain', resume);
      }
      return false;
    }
    return true;
  };
  // An ssh2 channel lends this pipe the read buffers of its connection (readSshIntoPool).
  const channel = isSsh2Channel(src);
  if (channel) (src as unknown as { _takesBorrowed: boolean })._takesBorrowed = true;
  const size = (src as unknown as SocketInternals).encrypted ? 16 * 1024 : 64 * 1024;
  const pooledRead = (chunk: Buffer, buf: Buffer): boolean => send(chunk, () => { giveBack(buf); });
  src.on('data', (d: Buffer) => {
    if (channel) {
      const done = holdBorrowed(d);
      // A channel's own chunks are fresh buffers, which the young generation must collect.
      if (!done) noteRelayed(d.length);
      send(d, done);
      return;
    }
    if (!pooled || !batches) noteRelayed(d.length);
    if (!send(d) || pooled) return;
    carried += d.length;
    if (carried >= BULK_AFTER_BYTES) pooled = readIntoPool(src, size, pooledRead);
  });
  src.once('end', () => {
    if (options.end === false) { if (corked) flush(); } else dst.end();
  });
}

/** Whether `s` is an ssh2 channel (its flow-control windows are the mark). */
function isSsh2Channel(s: Readable): boolean {
  const c = s as unknown as { incoming?: { window?: unknown }; outgoing?: { window?: unknown } };
  return typeof c.incoming?.window === 'number' && typeof c.outgoing?.window === 'number';
}

/** How long a side may take to write its queued tail after the other side closed cleanly. */
export const FLUSH_GRACE_MS = 30_000;

/** How {@link pipeBoth} copies. */
export interface PipeOptions {
  /** Called once, after both sides were destroyed. */
  onClose?: () => void;
}

/**
 * Pipes `a` and `b` both ways with backpressure; when either side fails or closes without
 * an end, both are destroyed (once); when one closes after a clean end, the other first
 * writes what is queued for it (at most {@link FLUSH_GRACE_MS}). Streams paused before (by a
 * reader of a first line) start flowing.
 */
export function pipeBoth(a: Duplex, b: Duplex, options: PipeOptions = {}): void {
  corkedPipe(a, b);
  corkedPipe(b, a);
  a.resume();
  b.resume();
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    for (const s of [a, b]) {
      try { s.destroy(); } catch { /* already gone */ }
    }
    options.onClose?.();
  };
  for (const [s, other] of [[a, b], [b, a]] as const) {
    s.on('error', close);
    s.on('close', () => {
      // A side that ended cleanly leaves the other the time to write what is still queued
      // for it (corkedPipe has ended it): destroying it now would drop that tail, up to
      // MAX_QUEUED_BYTES, for a client that reads slowly. Anything else closes both now.
      if (!s.readableEnded || other.destroyed || other.writableFinished) { close(); return; }
      const timer = setTimeout(close, FLUSH_GRACE_MS);
      timer.unref();
      other.once('finish', () => { clearTimeout(timer); close(); });
    });
  }
}

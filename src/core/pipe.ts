/**
 * The one bidirectional pipe of Postern: every relay (the TLS tunnel, the SSH listener's
 * `proxy:` subsystem and `direct-tcpip` channels, the recording proxy's forwards, the
 * client's `-L`/`-R` forwards) copies bytes both ways through {@link pipeBoth}, so its
 * speed is tuned in this one place.
 * It works on any Duplex: net and TLS sockets, ssh2 channels (whose destroy() sends EOF
 * and CLOSE).
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';

let heapTuned = false;

/**
 * Tunes V8's garbage collector for a process that relays bytes (the proxy). Every socket
 * read and every TLS record arrives in a fresh ArrayBuffer, and V8 by default starts a full
 * mark-compact each time 64 MB of such external memory has been allocated since the last
 * one, however little of it is alive: a relay paid one full collection of its whole heap
 * per 15-30 MiB carried, 30-40% of its CPU (docs/benchmarks.md). Counting external memory in
 * the global heap limit, as V8's own flag does, spaces them by the heap's growth factor
 * instead. Called once, at the start of the proxy role.
 */
export function tuneHeapForRelay(): void {
  if (heapTuned) return;
  heapTuned = true;
  setFlagsFromString('--external-memory-accounted-in-global-limit');
}

/**
 * Copies `src` to `dst` with backpressure, corking `dst` until the end of this turn of the
 * event loop (its check phase, `setImmediate`): every chunk the poll phase delivers — one
 * per TLS record, one per SSH packet, one per socket read — leaves in one `writev` instead
 * of one `write()` each. A lone chunk (a keystroke) is not held back: the check phase
 * follows the poll phase that delivered it, with no timer in between. `dst` ends when `src`
 * ends (half-close is passed on; `end()` flushes what is corked), unless `end` is false:
 * then what is corked is written at once and `dst` stays open (a process's stdout).
 */
export function corkedPipe(src: Readable, dst: Writable, options: { end?: boolean } = {}): void {
  // Corking pays only where the stream can write many chunks at once (sockets). An ssh2
  // channel writes each chunk as its own packets anyway, and its connection corks its
  // socket per turn itself (patch 010); corking the channel too would delay by a turn.
  const batches = typeof (dst as Writable & { _writev?: unknown })._writev === 'function';
  let corked = false;
  const flush = (): void => {
    corked = false;
    if (!dst.destroyed) dst.uncork();
  };
  const resume = (): void => { src.resume(); };
  src.on('data', (d: Buffer) => {
    if (batches && !corked) {
      corked = true;
      dst.cork();
      setImmediate(flush);
    }
    if (!dst.write(d)) {
      src.pause();
      dst.once('drain', resume);
    }
  });
  src.once('end', () => {
    if (options.end === false) { if (corked) flush(); } else dst.end();
  });
}

/** How {@link pipeBoth} copies. */
export interface PipeOptions {
  /** Called once, after both sides were destroyed. */
  onClose?: () => void;
}

/**
 * Pipes `a` and `b` both ways with backpressure; when either side closes or fails, both
 * are destroyed (once). Streams paused before (by a reader of a first line) start flowing.
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
  for (const s of [a, b]) {
    s.on('error', close);
    s.on('close', close);
  }
}

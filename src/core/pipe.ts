/**
 * The one bidirectional pipe of Postern: every relay (the TLS tunnel, the SSH listener's
 * `proxy:` subsystem and `direct-tcpip` channels, the recording proxy's forwards) copies
 * bytes both ways through {@link pipeBoth}, so its speed is tuned in this one place.
 * It works on any Duplex: net and TLS sockets, ssh2 channels (whose destroy() sends EOF
 * and CLOSE).
 */
import type { Duplex, Readable, Writable } from 'node:stream';

/**
 * Copies `src` to `dst` with backpressure, corking `dst` for the rest of the tick: the
 * chunks one read produces (a TLS read yields one per 16 KiB record) leave in one writev
 * instead of one write() each. `dst` ends when `src` ends (half-close is passed on).
 */
export function corkedPipe(src: Readable, dst: Writable): void {
  let corked = false;
  src.on('data', (d: Buffer) => {
    if (!corked) {
      corked = true;
      dst.cork();
      process.nextTick(() => { corked = false; dst.uncork(); });
    }
    if (!dst.write(d)) {
      src.pause();
      dst.once('drain', () => src.resume());
    }
  });
  src.once('end', () => dst.end());
}

/** How {@link pipeBoth} copies. */
export interface PipeOptions {
  /**
   * Copy with {@link corkedPipe}: worth it where a source yields several chunks per read
   * (a TLS socket: one per record), as the tunnel's does. Off, each direction is a plain
   * `pipe()`: measured cheaper where the source is an ssh2 channel, whose 'data' comes one
   * SSH packet at a time and stalls its window when paused.
   */
  cork?: boolean;
  /** Called once, after both sides were destroyed. */
  onClose?: () => void;
}

/**
 * Pipes `a` and `b` both ways with backpressure; when either side closes or fails, both
 * are destroyed (once). Streams paused before (by a reader of a first line) start flowing.
 */
export function pipeBoth(a: Duplex, b: Duplex, options: PipeOptions = {}): void {
  if (options.cork) {
    corkedPipe(a, b);
    corkedPipe(b, a);
  } else {
    a.pipe(b);
    b.pipe(a);
  }
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

/**
 * The streams a command reads and writes, and a terminal opened on its own: the types that
 * deps.ts hands to commands and terminal.ts makes from /dev/tty.
 */
import type { Readable, Writable } from 'node:stream';

/** An output stream that may be a terminal. */
export type OutStream = Writable & { isTTY?: boolean; columns?: number };
/** An input stream that may be a terminal. */
export type InStream = Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

/** The streams a command reads and writes. */
export interface Io {
  stdin: InStream;
  stdout: OutStream;
  stderr: OutStream;
}

/** The terminal opened on its own (stdin and stdout may carry something else, as for a ProxyCommand). */
export interface Terminal {
  io: Io;
  close(): void;
}

/**
 * Sessions on a node over a ready ssh2 client: an interactive shell or a command, with a
 * PTY (raw mode, window size, resize) or without, the terminal streams piped; and a
 * command whose output lines are prefixed with the node's name, for a label selector.
 */
import type { Readable, Writable } from 'node:stream';
import type { Client, ClientChannel, PseudoTtyOptions } from 'ssh2';
import { ConnectionError } from '../core/errors.ts';
import { escapeControl } from '../core/text.ts';
import { EscapeFilter, escapeHelp } from './escapes.ts';
import type { EscapeChar } from './escapes.ts';

/** An input stream that may be a terminal. */
export type TermIn = Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
/** An output stream that may be a terminal (it emits 'resize' when it is one). */
export type TermOut = Writable & { isTTY?: boolean; columns?: number; rows?: number };

/** The streams a session uses. */
export interface SessionIo {
  stdin: TermIn;
  stdout: TermOut;
  stderr: TermOut;
}

/** How a remote command or shell ended. */
export interface SessionExit {
  /** The exit status, when the remote sent one. */
  code?: number;
  /** The signal that killed it, when one did (e.g. "SIGKILL"). */
  signal?: string;
}

/** What to run. */
export interface SessionOptions {
  /** The command; without one, a login shell. */
  command?: string;
  /** A PTY, with its terminal type; the size comes from stdout. */
  pty?: { term: string };
  io: SessionIo;
  /**
   * The escape character (escapes.ts) read on the keys of a PTY session on a terminal;
   * null or absent for none. `~.` closes the connection: the session then has no exit status.
   */
  escapeChar?: EscapeChar;
}

/**
 * The exit code OpenSSH's ssh ends with for a session: the remote status, or 255 when
 * there was none (the connection broke, or a signal killed the remote command).
 */
export function exitCodeOf(exit: SessionExit): number {
  return exit.code ?? 255;
}

/** The window size of a terminal for a PTY; 80x24 when it tells none. */
export function windowOf(out: TermOut): { rows: number; cols: number } {
  return { rows: out.rows && out.rows > 0 ? out.rows : 24, cols: out.columns && out.columns > 0 ? out.columns : 80 };
}

/** How a channel's remote command ended, filled in when its 'exit' arrives. */
export function watchExit(ch: ClientChannel): SessionExit {
  const exit: SessionExit = {};
  ch.on('exit', (code: number | null, signal?: string) => {
    if (typeof code === 'number') exit.code = code;
    else if (signal) exit.signal = signal;
  });
  return exit;
}

/**
 * Runs a shell or a command on the node with the given streams and resolves when its
 * channel closes. With a PTY and a terminal on stdin, stdin is put in raw mode (so Ctrl-C
 * and the like go to the remote side) and restored before this resolves; a resize of
 * stdout is passed on; with an escape character, its escapes are read on the keys.
 */
export function runSession(client: Client, opts: SessionOptions): Promise<SessionExit> {
  const { stdin, stdout, stderr } = opts.io;
  return new Promise((resolve, reject) => {
    const pty: PseudoTtyOptions | undefined = opts.pty ? { term: opts.pty.term, ...windowOf(stdout), width: 0, height: 0 } : undefined;
    const onChannel = (err: Error | undefined, ch: ClientChannel): void => {
      if (err) {
        reject(new ConnectionError(`the node refused the session: ${escapeControl(err.message)}`, { cause: err }));
        return;
      }
      const exit = watchExit(ch);
      let raw = false;
      if (pty && stdin.isTTY && typeof stdin.setRawMode === 'function') {
        stdin.setRawMode(true);
        raw = true;
      }
      const onResize = (): void => {
        const w = windowOf(stdout);
        ch.setWindow(w.rows, w.cols, 0, 0);
      };
      if (pty && stdout.isTTY) stdout.on('resize', onResize);
      // stdin's end becomes the channel's EOF; the remote side's output never ends ours.
      let gone = false;
      const escapes = raw && opts.escapeChar !== undefined && opts.escapeChar !== null
        ? new EscapeFilter(opts.escapeChar, {
          disconnect: () => { gone = true; ch.close(); client.end(); },
          help: () => { stderr.write(escapeHelp(opts.escapeChar!, 'disconnect')); },
        })
        : undefined;
      const onKeys = (d: Buffer): void => {
        if (gone) return;
        const keys = escapes!.filter(d);
        if (keys.length > 0 && !ch.write(keys)) {
          stdin.pause();
          ch.once('drain', () => stdin.resume());
        }
      };
      const onKeysEnd = (): void => { ch.end(); };
      if (escapes) {
        stdin.on('data', onKeys);
        stdin.once('end', onKeysEnd);
        stdin.resume();
      } else {
        stdin.pipe(ch);
      }
      ch.pipe(stdout, { end: false });
      ch.stderr.pipe(stderr, { end: false });
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        stdout.off('resize', onResize);
        if (escapes) {
          stdin.off('data', onKeys);
          stdin.off('end', onKeysEnd);
        } else {
          stdin.unpipe(ch);
        }
        // Let the process exit: nothing reads stdin any more.
        stdin.pause();
        if (raw) stdin.setRawMode?.(false);
        client.off('close', finish);
        resolve(exit);
      };
      ch.once('close', finish);
      // A connection that dies takes its channels along; do not wait for a close that never comes.
      client.once('close', finish);
    };
    if (opts.command !== undefined) {
      client.exec(opts.command, pty ? { pty } : {}, onChannel);
    } else {
      client.shell(pty ?? false, onChannel);
    }
  });
}

/** Writes complete lines with a prefix; a last line without a newline gets one on `flush`. */
export class LinePrefixer {
  /** A line longer than this is written in pieces, each prefixed, so memory stays bounded. */
  static readonly MAX_LINE = 64 * 1024;
  private readonly prefix: Buffer;
  private readonly write: (chunk: Buffer) => void;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(prefix: string, write: (chunk: Buffer) => void) {
    this.prefix = Buffer.from(prefix);
    this.write = write;
  }

  /** Takes output as it arrives; writes each complete line at once. */
  push(chunk: Buffer | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl < 0) break;
      this.write(Buffer.concat([this.prefix, ...this.pending, buf.subarray(start, nl + 1)]));
      this.pending = [];
      this.pendingBytes = 0;
      start = nl + 1;
    }
    if (start < buf.length) {
      this.pending.push(Buffer.from(buf.subarray(start)));
      this.pendingBytes += buf.length - start;
      if (this.pendingBytes >= LinePrefixer.MAX_LINE) this.flush();
    }
  }

  /** Writes what is left, ended with a newline. */
  flush(): void {
    if (this.pendingBytes === 0) return;
    this.write(Buffer.concat([this.prefix, ...this.pending, Buffer.from('\n')]));
    this.pending = [];
    this.pendingBytes = 0;
  }
}

/** The prefix of a node's lines: `[name] `, the name escaped. */
export function nodePrefix(name: string): string {
  return `[${escapeControl(name)}] `;
}

/**
 * Runs a command on one node of a selector: no PTY, no stdin (EOF at once), each line of
 * stdout and stderr written to ours with the node's prefix, the two kept apart.
 */
export function runPrefixed(client: Client, command: string, name: string, io: { stdout: Writable; stderr: Writable }): Promise<SessionExit> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err: Error | undefined, ch: ClientChannel) => {
      if (err) {
        reject(new ConnectionError(`node "${escapeControl(name)}" refused the session: ${escapeControl(err.message)}`, { cause: err }));
        return;
      }
      const exit: SessionExit = {};
      const prefix = nodePrefix(name);
      const out = new LinePrefixer(prefix, (b) => io.stdout.write(b));
      const errOut = new LinePrefixer(prefix, (b) => io.stderr.write(b));
      ch.on('exit', (code: number | null, signal?: string) => {
        if (typeof code === 'number') exit.code = code;
        else if (signal) exit.signal = signal;
      });
      ch.on('data', (d: Buffer) => out.push(d));
      ch.stderr.on('data', (d: Buffer) => errOut.push(d));
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        out.flush();
        errOut.flush();
        client.off('close', finish);
        resolve(exit);
      };
      ch.once('close', finish);
      client.once('close', finish);
      ch.end();
    });
  });
}

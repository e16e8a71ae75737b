/**
 * `postern join`: the client's half of joining a live session. It runs the command
 * `join ID MODE` on the proxy's SSH listener (the proxy attaches the channel to the
 * session), shows the session's screen on stdout and the proxy's notices on stderr, and
 * sends keystrokes (the proxy drops an observer's). Leaving: `~.` at the start of a line,
 * as in ssh, and for an observer also Ctrl-C (an observer's keys go nowhere anyway);
 * without a terminal, the end of stdin leaves.
 */
import { PassThrough } from 'node:stream';
import type { Client } from 'ssh2';
import type { JoinMode } from '../api/types.ts';
import { runSession } from './ssh-session.ts';
import type { SessionExit, SessionIo } from './ssh-session.ts';

/** Cuts `~.` (after a newline or at the start) and, for observers on a terminal, Ctrl-C out of the keystrokes; calls `leave` on them. */
export class EscapeFilter {
  private atLineStart = true;
  private tilde = false;
  private readonly observer: boolean;
  private readonly leave: () => void;

  constructor(mode: JoinMode, leave: () => void) {
    this.observer = mode === 'observer';
    this.leave = leave;
  }

  /** The bytes to send on; calls `leave` (once per escape) when an escape was typed. */
  filter(chunk: Buffer): Buffer {
    const out: number[] = [];
    for (const b of chunk) {
      if (this.observer && b === 0x03) { this.leave(); return Buffer.from(out); }
      if (this.tilde) {
        this.tilde = false;
        if (b === 0x2e) { this.leave(); return Buffer.from(out); }
        out.push(0x7e);
        if (b === 0x7e) { this.atLineStart = false; continue; }
      } else if (b === 0x7e && this.atLineStart) {
        this.tilde = true;
        continue;
      }
      out.push(b);
      this.atLineStart = b === 0x0d || b === 0x0a;
    }
    return Buffer.from(out);
  }
}

/** Joins session `id` through a connected proxy client; resolves when the session ends or we leave. */
export async function joinSession(client: Client, id: string, mode: JoinMode, io: SessionIo): Promise<SessionExit> {
  const keys = new PassThrough();
  const stdin = io.stdin;
  const tty = stdin.isTTY === true && typeof stdin.setRawMode === 'function';
  if (tty) stdin.setRawMode!(true);
  let left = false;
  const leave = (): void => {
    if (left) return;
    left = true;
    keys.end();
  };
  const esc = new EscapeFilter(mode, leave);
  const onData = (d: Buffer): void => {
    if (left) return;
    const rest = tty ? esc.filter(d) : d;
    if (rest.length > 0) keys.write(rest);
  };
  stdin.on('data', onData);
  stdin.once('end', leave);
  try {
    return await runSession(client, { command: `join ${id} ${mode}`, ...(tty ? { pty: { term: process.env.TERM || 'xterm-256color' } } : {}), io: { ...io, stdin: keys } });
  } finally {
    stdin.off('data', onData);
    stdin.pause();
    if (tty) stdin.setRawMode!(false);
  }
}

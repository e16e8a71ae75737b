/**
 * `postern join`: the client's half of joining a live session. It runs the command
 * `join ID MODE` on the proxy's SSH listener (the proxy attaches the channel to the
 * session), shows the session's screen on stdout and the proxy's notices on stderr, and
 * sends keystrokes (the proxy drops an observer's). Leaving: `~.` at the start of a line,
 * as in ssh, and for an observer also Ctrl-C (an observer's keys go nowhere anyway);
 * without a terminal, the end of stdin leaves, once the proxy has attached us (so piped
 * keystrokes reach the session first).
 *
 * Leaving sends EOF and then closes the channel: the proxy drops a participant whose
 * channel closes, whatever it makes of the EOF.
 */
import type { Client, ClientChannel, PseudoTtyOptions } from 'ssh2';
import type { JoinMode } from '../api/types.ts';
import { ConnectionError } from '../core/errors.ts';
import { escapeControl } from '../core/text.ts';
import { watchExit, windowOf } from './ssh-session.ts';
import { DEFAULT_ESCAPE_CHAR, EscapeFilter, escapeHelp } from './escapes.ts';
import type { EscapeChar } from './escapes.ts';
import type { SessionExit, SessionIo } from './ssh-session.ts';

/** The proxy's notices (`[postern] TEXT`, contract of the SSH listener) mean we are attached; its refusals start with `error: `. */
const NOTICE = '[postern] ';

/**
 * Joins session `id` through a connected proxy client; resolves when the session ends or
 * we leave. The exit: the proxy's status (0 when the session ended, 1 when it refused or removed us),
 * 0 when we left, none when the connection broke. `term` is $TERM, for the PTY;
 * `escapeChar` starts the escapes of escapes.ts (`~.` leaves).
 */
export function joinSession(client: Client, id: string, mode: JoinMode, io: SessionIo, term?: string, escapeChar: EscapeChar = DEFAULT_ESCAPE_CHAR): Promise<SessionExit> {
  const { stdin, stdout, stderr } = io;
  const tty = stdin.isTTY === true && typeof stdin.setRawMode === 'function';
  const pty: PseudoTtyOptions | undefined = tty ? { term: term || 'xterm-256color', ...windowOf(stdout), width: 0, height: 0 } : undefined;
  return new Promise((resolve, reject) => {
    client.exec(`join ${id} ${mode}`, pty ? { pty } : {}, (err: Error | undefined, ch: ClientChannel) => {
      if (err) {
        reject(new ConnectionError(`the proxy refused the join: ${escapeControl(err.message)}`, { cause: err }));
        return;
      }
      const exit = watchExit(ch);
      let attached = false;
      let leaving = false;
      let left = false;
      const goNow = (): void => {
        if (left) return;
        left = true;
        try { ch.end(); } catch { /* already closed */ }
        ch.close();
      };
      // On a terminal the user wants out now; piped keystrokes first have to reach the session.
      const leave = (): void => {
        leaving = true;
        if (attached || tty) goNow();
      };
      const onAttach = (): void => {
        if (attached) return;
        attached = true;
        if (leaving) goNow();
      };
      ch.on('data', (d: Buffer) => { onAttach(); stdout.write(d); });
      ch.stderr.on('data', (d: Buffer) => {
        if (d.includes(NOTICE)) onAttach();
        stderr.write(d);
      });

      // An escape leaves after the keys typed before it in the same chunk were sent.
      let escaped = false;
      const esc = new EscapeFilter(escapeChar, {
        disconnect: () => { escaped = true; },
        help: () => { if (escapeChar !== null) stderr.write(escapeHelp(escapeChar, 'leave the session')); },
      });
      const onData = (d: Buffer): void => {
        if (leaving) return;
        // An observer's keys go nowhere anyway: on a terminal, Ctrl-C leaves too.
        const cut = tty && mode === 'observer' ? d.indexOf(0x03) : -1;
        const rest = tty ? esc.filter(cut >= 0 ? d.subarray(0, cut) : d) : d;
        if (rest.length > 0) ch.write(rest);
        if (escaped || cut >= 0) leave();
      };
      if (tty) stdin.setRawMode!(true);
      stdin.on('data', onData);
      stdin.once('end', leave);
      stdin.resume();
      const onResize = (): void => {
        const w = windowOf(stdout);
        ch.setWindow(w.rows, w.cols, 0, 0);
      };
      if (tty && stdout.isTTY) stdout.on('resize', onResize);

      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        stdout.off('resize', onResize);
        stdin.off('data', onData);
        stdin.off('end', leave);
        // Let the process exit: nothing reads stdin any more.
        stdin.pause();
        if (tty) stdin.setRawMode!(false);
        client.off('close', finish);
        if (exit.code === undefined && exit.signal === undefined && left) exit.code = 0;
        resolve(exit);
      };
      ch.once('close', finish);
      // A connection that dies takes its channels along; do not wait for a close that never comes.
      client.once('close', finish);
    });
  });
}

/**
 * The controlling terminal (/dev/tty) as streams of its own, for prompts while stdin and
 * stdout belong to someone else (`postern proxy ssh` runs under ssh as its ProxyCommand).
 */
import { openSync, closeSync } from 'node:fs';
import { ReadStream, WriteStream } from 'node:tty';
import { Writable } from 'node:stream';
import type { OutStream, Terminal } from './io.ts';

/** Opens /dev/tty for reading and writing; undefined when this process has no terminal. */
export function openControllingTerminal(): Terminal | undefined {
  let rfd: number | undefined;
  let wfd: number | undefined;
  try {
    rfd = openSync('/dev/tty', 'r');
    wfd = openSync('/dev/tty', 'w');
  } catch {
    if (rfd !== undefined) closeSync(rfd);
    return undefined;
  }
  const input = new ReadStream(rfd);
  const output = new WriteStream(wfd);
  // Each prompt pipes into its output and ends it when done, which would close the terminal
  // for the next prompt (process.stderr is exempt from that; our stream is not). So every
  // read of io.stdout / io.stderr gets its own view that writes through to the terminal.
  const view = (): OutStream => {
    const w = new Writable({ write: (chunk: Buffer, _enc, cb) => { output.write(chunk, cb); } });
    w.on('error', () => {});
    // Spinners (ora) move the cursor through the tty methods.
    return Object.assign(w, {
      isTTY: true, columns: output.columns || 80, rows: output.rows || 24, // a terminal of unknown size says 0
      cursorTo: output.cursorTo.bind(output), moveCursor: output.moveCursor.bind(output), clearLine: output.clearLine.bind(output),
      clearScreenDown: output.clearScreenDown.bind(output), getColorDepth: output.getColorDepth.bind(output),
      hasColors: output.hasColors.bind(output), getWindowSize: output.getWindowSize.bind(output),
    });
  };
  return {
    io: { stdin: input, get stdout() { return view(); }, get stderr() { return view(); } },
    close: () => { input.destroy(); output.destroy(); },
  };
}

/**
 * OpenSSH-style escape sequences on the keystrokes of an interactive session (`postern
 * ssh` with a terminal, `postern join`): the escape character (`~` unless `-e` says
 * otherwise) is read only at the start of a line, that is first or right after Enter.
 * Then `.` disconnects, `?` lists the escapes, and the escape character again sends one
 * escape character; any other key sends both, as in ssh.
 */
import { UsageError } from '../core/errors.ts';
import { escapeControl } from '../core/text.ts';

/** The escape character as a byte, or null for `none` (no escapes: the session is fully transparent). */
export type EscapeChar = number | null;

/** OpenSSH's default escape character. */
export const DEFAULT_ESCAPE_CHAR = 0x7e;

/**
 * Reads `-e`'s argument as OpenSSH does: one character, `^X` for a control character, or
 * `none`.
 */
export function parseEscapeChar(text: string): EscapeChar {
  if (text === 'none') return null;
  if (text.length === 1 && text.charCodeAt(0) < 0x80) return text.charCodeAt(0);
  if (/^\^[@-_a-z?]$/.test(text)) {
    const c = text[1].toUpperCase();
    return c === '?' ? 0x7f : c.charCodeAt(0) & 0x1f;
  }
  throw new UsageError(`invalid escape character "${escapeControl(text)}"`, { hint: 'Give one character (-e ~), a control character (-e ^]), or none (-e none)' });
}

/** How an escape character is shown to the user: `~`, `^]`. */
export function showEscapeChar(c: number): string {
  if (c < 0x20) return `^${String.fromCharCode(c + 0x40)}`;
  if (c === 0x7f) return '^?';
  return String.fromCharCode(c);
}

/**
 * What `~?` prints: the escape it read, as ssh echoes it, then the list. Lines end in CR LF,
 * as the terminal is in raw mode.
 */
export function escapeHelp(c: number, leaveWhat: string): string {
  const e = showEscapeChar(c);
  return [
    `${e}?`,
    'Supported escape sequences:',
    ` ${e}.   - ${leaveWhat}`,
    ` ${e}?   - this message`,
    ` ${e}${e}   - send the escape character by typing it twice`,
    '(Escapes are only recognized right after Enter or at the start.)',
    '',
  ].join('\r\n');
}

/** What the escapes do. */
export interface EscapeActions {
  /** `.`: the session should end. */
  disconnect(): void;
  /** `?`: show the list of escapes. */
  help(): void;
}

/** Cuts escape sequences out of a keystroke stream and runs their actions. */
export class EscapeFilter {
  private atLineStart = true;
  private pending = false;
  private readonly escape: EscapeChar;
  private readonly actions: EscapeActions;

  constructor(escape: EscapeChar, actions: EscapeActions) {
    this.escape = escape;
    this.actions = actions;
  }

  /**
   * The bytes to send on. After a disconnect the rest of the chunk is dropped; the bytes
   * before it are returned, to be sent first.
   */
  filter(chunk: Buffer): Buffer {
    if (this.escape === null) return chunk;
    const esc = this.escape;
    const out: number[] = [];
    for (const b of chunk) {
      if (this.pending) {
        this.pending = false;
        if (b === 0x2e) {
          this.actions.disconnect();
          return Buffer.from(out);
        }
        if (b === 0x3f) {
          this.actions.help();
          // Still at the start of a line: another escape may follow, as in ssh.
          this.atLineStart = true;
          continue;
        }
        out.push(esc);
        if (b === esc) {
          this.atLineStart = false;
          continue;
        }
      } else if (b === esc && this.atLineStart) {
        this.pending = true;
        continue;
      }
      out.push(b);
      this.atLineStart = b === 0x0d || b === 0x0a;
    }
    return Buffer.from(out);
  }
}

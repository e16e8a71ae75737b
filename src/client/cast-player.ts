/**
 * Playing a recording (asciicast v2, src/api/asciicast.ts) on the engineer's machine:
 *
 *   replayCast()     the output with its original timing (scaled, idle pauses capped), for `play --format pty`
 *   castTranscript() the output as plain text lines, escape sequences interpreted away, for `play --format text`
 */
import { setTimeout as sleepMs } from 'node:timers/promises';
import type { CastEvent } from '../api/asciicast.ts';

/** How to replay. */
export interface ReplayOptions {
  /** 2 plays twice as fast; default 1. */
  speed?: number;
  /** Longest pause between two events, in recorded seconds (before the speed applies); none by default. */
  idleLimitSec?: number;
  /** Waits; tests pass a fake one. */
  sleep?: (ms: number) => Promise<void>;
  /** Where markers (asciicast "m", e.g. a gap in the recording) are told. */
  onMarker?: (label: string, t: number) => void;
}

/**
 * Writes each output event when its time comes. Time is kept against the start, so many
 * small waits do not add up to drift.
 */
export async function replayCast(events: CastEvent[], write: (data: string) => void, opts: ReplayOptions = {}): Promise<void> {
  const speed = opts.speed ?? 1;
  const sleep = opts.sleep ?? ((ms: number) => sleepMs(ms).then(() => undefined));
  const limit = opts.idleLimitSec ?? Infinity;
  let prev = 0;
  let due = 0;
  let waited = 0;
  for (const [t, code, data] of events) {
    due += Math.min(Math.max(0, t - prev), limit) * 1000 / speed;
    prev = t;
    if (code !== 'o' && code !== 'm') continue;
    if (due - waited >= 1) {
      await sleep(due - waited);
      waited = due;
    }
    if (code === 'o') write(data);
    else opts.onMarker?.(data, t);
  }
}

// An escape sequence: CSI (ESC [ or C1 0x9b) with its parameters, OSC/DCS/SOS/PM/APC strings up to
// BEL or ST, or a two-character escape such as ESC ( B or ESC 7.
const SEQUENCE = /(?:\x1b\[|\x9b)([0-?]*)([ -/]*)([@-~])|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[ -/]*[0-~]?/g;

/**
 * The output as text: what a reader of the session would want in a transcript. It follows
 * a line's cursor through carriage returns, backspaces and the line-editing sequences shells
 * send (cursor left/right, column, erase in line, delete characters), drops every other
 * sequence and control character, and writes markers as `[…]` lines.
 */
export function castTranscript(events: CastEvent[]): string {
  const lines: string[] = [];
  let line: string[] = [];
  let col = 0;
  const endLine = (): void => {
    lines.push(line.join('').trimEnd());
    line = [];
    col = 0;
  };
  const put = (ch: string): void => {
    while (line.length < col) line.push(' ');
    line[col++] = ch;
  };
  const csi = (params: string, final: string): void => {
    const n = Math.max(1, Number(params.split(';')[0]) || 1);
    switch (final) {
      case 'D': col = Math.max(0, col - n); break;
      case 'C': col += n; break;
      case 'G': col = n - 1; break;
      case 'K': {
        const mode = Number(params) || 0;
        if (mode === 0) line.length = Math.min(line.length, col);
        else if (mode === 1) for (let i = 0; i < Math.min(col + 1, line.length); i++) line[i] = ' ';
        else line = [];
        break;
      }
      case 'P': line.splice(col, n); break;
      case '@': if (col < line.length) line.splice(col, 0, ...' '.repeat(n)); break;
      default: break;
    }
  };
  let text = '';
  const flushText = (): void => {
    let last = 0;
    for (const m of text.matchAll(SEQUENCE)) {
      plain(text.slice(last, m.index));
      if (m[3] !== undefined && m[2] === '' && !/[<=>?]/.test(m[1])) csi(m[1], m[3]);
      last = m.index + m[0].length;
    }
    plain(text.slice(last));
    text = '';
  };
  const plain = (s: string): void => {
    for (const ch of s) {
      if (ch === '\n') endLine();
      else if (ch === '\r') col = 0;
      else if (ch === '\b') col = Math.max(0, col - 1);
      else if (ch === '\t') put('\t');
      else if (/[\u0000-\u001f\u007f-\u009f]/.test(ch)) continue;
      else put(ch);
    }
  };
  for (const [, code, data] of events) {
    if (code === 'o') text += data;
    else if (code === 'm') {
      flushText();
      if (line.length > 0) endLine();
      plain(`[${data}]`);
      endLine();
    }
  }
  flushText();
  if (line.length > 0) endLine();
  return lines.length > 0 ? lines.join('\n') + '\n' : '';
}

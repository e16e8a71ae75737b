/**
 * asciicast v2, the format of Postern's session recordings (what `asciinema play` and the
 * asciinema web player read): a header line, one JSON object, then one event per line,
 * `[time, code, data]` with `time` in seconds since the start:
 *
 *   {"version":2,"width":120,"height":40,"timestamp":1700000000,"title":"alice@web1","env":{"TERM":"xterm-256color"},"postern":{…}}
 *   [0.152, "o", "$ "]          output of the session
 *   [1.027, "i", "l"]           a keystroke (only when the cluster's record_input is on)
 *   [2.5, "r", "100x30"]        the terminal was resized to COLSxROWS
 *   [9.3, "m", "postern: …"]    a marker; Postern marks output it could not keep
 *
 * Auth stores the events; the header is built from the recording's meta on every read, so
 * an incomplete recording still reads as a valid file.
 */
import { ValidationError } from '../core/errors.ts';
import type { RecordingMeta } from './types.ts';

/** The event codes Postern writes. */
export type CastEventCode = 'o' | 'i' | 'r' | 'm';

/** One event: seconds since the start, the code, the data. */
export type CastEvent = [number, CastEventCode, string];

/** The header line of a .cast file; `postern` holds Postern's fields, which players ignore. */
export interface CastHeader {
  version: 2;
  width: number;
  height: number;
  /** Unix seconds of the start. */
  timestamp: number;
  /** Seconds, for a complete recording. */
  duration?: number;
  title: string;
  command?: string;
  env: { TERM: string; SHELL?: string };
  postern?: Omit<RecordingMeta, 'width' | 'height' | 'term' | 'bytes' | 'chunks' | 'updatedAt' | 'durationSec'>;
  [field: string]: unknown;
}

const CODES: ReadonlySet<string> = new Set(['o', 'i', 'r', 'm']);
/** `COLSxROWS` of a resize event. */
export const RESIZE_DATA = /^([1-9]\d{0,4})x([1-9]\d{0,4})$/;

/** Rounds a time to microseconds, as asciinema writes them. */
export function castTime(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e6;
}

/** One event as its line (no newline). */
export function formatCastEvent(event: CastEvent): string {
  return JSON.stringify([castTime(event[0]), event[1], event[2]]);
}

/** Reads and checks one event line; throws a ValidationError that says what is wrong with it. */
export function parseCastEvent(line: string, where = 'event'): CastEvent {
  let v: unknown;
  try { v = JSON.parse(line); } catch { throw new ValidationError(`${where} is not JSON`); }
  if (!Array.isArray(v) || v.length !== 3) throw new ValidationError(`${where} must be [time, code, data]`);
  const [t, code, data] = v as unknown[];
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) throw new ValidationError(`${where}: the time must be a number of seconds, 0 or more`);
  if (typeof code !== 'string' || !CODES.has(code)) throw new ValidationError(`${where}: the code must be "o", "i", "r" or "m"`);
  if (typeof data !== 'string') throw new ValidationError(`${where}: the data must be a string`);
  if (code === 'r' && !RESIZE_DATA.test(data)) throw new ValidationError(`${where}: a resize is "COLSxROWS"`);
  return [t, code as CastEventCode, data];
}

/** The header of a recording, built from its meta. */
export function castHeader(meta: RecordingMeta): CastHeader {
  const started = Date.parse(meta.startedAt);
  const header: CastHeader = {
    version: 2,
    width: meta.width,
    height: meta.height,
    timestamp: Math.floor(started / 1000),
    ...(meta.status === 'complete' ? { duration: castTime(meta.durationSec) } : {}),
    title: `${meta.user}@${meta.node}`,
    ...(meta.command !== undefined ? { command: meta.command } : {}),
    env: { TERM: meta.term },
    postern: {
      id: meta.id, user: meta.user, node: meta.node, login: meta.login, kind: meta.kind,
      ...(meta.command !== undefined ? { command: meta.command } : {}),
      startedAt: meta.startedAt,
      ...(meta.endedAt ? { endedAt: meta.endedAt } : {}),
      status: meta.status,
      ...(meta.exitCode !== undefined ? { exitCode: meta.exitCode } : {}),
      ...(meta.lostBytes ? { lostBytes: meta.lostBytes } : {}),
      recordInput: meta.recordInput,
      ...(meta.clientAddr ? { clientAddr: meta.clientAddr } : {}),
      ...(meta.sessionId ? { sessionId: meta.sessionId } : {}),
    },
  };
  return header;
}

/** A whole .cast file read back. */
export interface ParsedCast {
  header: CastHeader;
  events: CastEvent[];
}

/** Reads a .cast file (asciicast v2); throws a ValidationError naming the bad line. */
export function parseCast(text: string): ParsedCast {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  let header: CastHeader;
  try { header = JSON.parse(lines[0] ?? '') as CastHeader; } catch { throw new ValidationError('not an asciicast file: the first line is not JSON'); }
  if (typeof header !== 'object' || header === null || header.version !== 2) throw new ValidationError('not an asciicast v2 file: the header has no "version": 2');
  if (!Number.isInteger(header.width) || !Number.isInteger(header.height)) throw new ValidationError('the asciicast header needs a width and a height');
  const events = lines.slice(1).map((l, i) => parseCastEvent(l, `line ${i + 2}`));
  return { header, events };
}

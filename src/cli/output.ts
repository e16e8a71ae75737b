/** Printing: colours only on a terminal without NO_COLOR, tables, JSON, and errors. */
import { inspect } from 'node:util';
import { Chalk } from 'chalk';
import type { ChalkInstance } from 'chalk';
import type { Deps, OutStream } from './deps.ts';
import { PosternError, toPosternError } from '../core/errors.ts';
import { escapeControl } from '../core/text.ts';

/** A chalk that colours only when the stream is a terminal and NO_COLOR is unset. */
export function colours(deps: Deps, stream: OutStream = deps.io.stdout): ChalkInstance {
  const off = deps.env.NO_COLOR !== undefined && deps.env.NO_COLOR !== '' || !stream.isTTY || deps.env.TERM === 'dumb';
  return new Chalk({ level: off ? 0 : 1 });
}

/** Writes a line to stdout. */
export function out(deps: Deps, line = ''): void {
  deps.io.stdout.write(line + '\n');
}

/** Writes a line to stderr. */
export function info(deps: Deps, line = ''): void {
  deps.io.stderr.write(line + '\n');
}

/** Writes JSON to stdout, pretty. */
export function outJson(deps: Deps, value: unknown): void {
  deps.io.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Formats rows as a table with a header; cells are escaped. */
export function table(header: string[], rows: string[][]): string {
  const cells = [header, ...rows].map((r) => r.map((c) => escapeControl(c)));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(cells[0]), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n');
}

/** What was thrown, for --debug: an error's stack, anything else as inspect() shows it (never `[object Object]`). */
function describeThrown(thrown: unknown): string {
  const stack = (thrown as { stack?: unknown } | null | undefined)?.stack;
  if (typeof stack === 'string') return stack;
  return typeof thrown === 'string' ? thrown : inspect(thrown);
}

/** Prints an error as `error: …` and `hint: …`, with the stack when debugging; returns its exit code. */
export function printError(deps: Deps, err: unknown, debug: boolean): number {
  const e: PosternError = toPosternError(err);
  const c = colours(deps, deps.io.stderr);
  info(deps, `${c.red('error:')} ${escapeControl(e.message)}`);
  if (e.hint) info(deps, `${c.dim('hint:')} ${escapeControl(e.hint)}`);
  if (debug) {
    info(deps, describeThrown(err));
    let cause = (err as { cause?: unknown })?.cause;
    while (cause) {
      info(deps, `caused by: ${describeThrown(cause)}`);
      cause = (cause as { cause?: unknown }).cause;
    }
  }
  return e.exitCode;
}

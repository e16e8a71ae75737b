/** Options several commands share, defined once so help and completions agree. */
import { Option } from 'commander';
import type { Deps } from './deps.ts';
import { parseDuration } from '../core/durations.ts';
import { UsageError } from '../core/errors.ts';
import type { PosternError } from '../core/errors.ts';
import { resolveDataDir as resolveServerDataDir } from '../core/server-paths.ts';
import { parseSelector } from '../api/labels.ts';
import type { Labels } from '../api/labels.ts';

/** `--format text|json|…`. */
export function formatOption(choices: string[]): Option {
  return new Option('--format <format>', 'output format').choices(choices).default(choices[0]);
}

/** `--data-dir DIR` for the serve host's commands. */
export function dataDirOption(): Option {
  return new Option('--data-dir <dir>', 'the data directory of postern serve (default $POSTERN_DATA_DIR, /var/lib/postern as root, else ~/.local/share/postern)');
}

/** The data directory: the flag, else $POSTERN_DATA_DIR, else the default for this user (src/core/server-paths.ts). */
export function resolveDataDir(flag: string | undefined, deps: Deps): string {
  return resolveServerDataDir(flag, deps.env, deps.homeDir);
}

/** Parses a label selector typed on the command line (src/api/labels.ts); a mistake is a usage error (exit 2). */
export function selectorArg(text: string): Labels {
  try {
    return parseSelector(text);
  } catch (err) {
    const e = err as PosternError;
    throw new UsageError(e.message, { ...(e.hint ? { hint: e.hint } : {}), cause: err });
  }
}

/** Parses a duration flag into ms with a usage error naming the flag. */
export function durationArg(flag: string): (value: string) => number {
  return (value: string) => {
    try {
      return parseDuration(value, flag);
    } catch (err) {
      throw new UsageError((err as Error).message, { hint: 'Use a number with a unit, e.g. 30m, 12h or 1h30m' });
    }
  };
}

/** Splits a comma-separated flag value. */
export function listArg(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

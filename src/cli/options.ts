/** Options several commands share, defined once so help and completions agree. */
import { Option } from 'commander';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Deps } from './deps.ts';
import { parseDuration } from '../core/durations.ts';
import { UsageError } from '../core/errors.ts';

/** `--format text|json|…`. */
export function formatOption(choices: string[]): Option {
  return new Option('--format <format>', 'output format').choices(choices).default(choices[0]);
}

/** `--data-dir DIR` for the serve host's commands. */
export function dataDirOption(): Option {
  return new Option('--data-dir <dir>', 'the data directory of postern serve (default $POSTERN_DATA_DIR, /var/lib/postern as root, else ~/.local/share/postern)');
}

/** The data directory: the flag, else $POSTERN_DATA_DIR, else the default for this user. */
export function resolveDataDir(flag: string | undefined, deps: Deps): string {
  if (flag) return flag;
  if (deps.env.POSTERN_DATA_DIR) return deps.env.POSTERN_DATA_DIR;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return root ? '/var/lib/postern' : join(deps.homeDir || homedir(), '.local', 'share', 'postern');
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

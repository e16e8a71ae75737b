/**
 * What every command gets from outside: streams, environment, home directory and clock.
 * A test calls `main(argv, deps)` with its own and reads what was printed.
 */
import { homedir } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';

/** An output stream that may be a terminal. */
export type OutStream = Writable & { isTTY?: boolean; columns?: number };
/** An input stream that may be a terminal. */
export type InStream = Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

/** The outside world of a command. */
export interface Deps {
  io: { stdin: InStream; stdout: OutStream; stderr: OutStream };
  env: Record<string, string | undefined>;
  homeDir: string;
  clock: Clock;
  /** The command that runs this CLI again (for ProxyCommand lines), e.g. `/usr/bin/postern`. */
  selfCommand: string;
}

/** The real process's deps. */
export function processDeps(): Deps {
  return {
    io: { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
    env: process.env,
    homeDir: homedir(),
    clock: systemClock,
    selfCommand: process.env.POSTERN_SELF ?? process.argv[1] ?? 'postern',
  };
}

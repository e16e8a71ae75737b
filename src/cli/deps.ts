/**
 * What every command gets from outside: streams, environment, home directory, clock,
 * signals, the controlling terminal and a factory of API clients. A test calls
 * `main(argv, deps)` with its own and reads what was printed; no command touches
 * `process` itself.
 */
import { homedir } from 'node:os';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';
import type { WebClient, WebClientOptions } from '../client/web-client.ts';
import { openControllingTerminal } from './terminal.ts';
import type { Io, Terminal } from './io.ts';
export type { InStream, Io, OutStream, Terminal } from './io.ts';

/** Process signals, as a command may listen to them. */
export interface Signals {
  /** Calls `handler` on each of `signals` until the returned function is called. */
  on(signals: readonly NodeJS.Signals[], handler: (signal: NodeJS.Signals) => void): () => void;
}

/** Makes the clients commands talk to, so a test can hand in its own. */
export interface ClientFactory {
  /** A client of a proxy's web API. */
  web(opts: WebClientOptions): Promise<WebClient>;
}

/** The outside world of a command. */
export interface Deps {
  io: Io;
  env: Record<string, string | undefined>;
  homeDir: string;
  /** The working directory (admin commands look for a project's .postern/data from it); process.cwd() when absent. */
  cwd?: string;
  clock: Clock;
  /** The command that runs this CLI again (for ProxyCommand lines), e.g. `/usr/bin/postern`. */
  selfCommand: string;
  /**
   * The Node.js that runs this CLI (process.execPath), to name with `selfCommand` in
   * ProxyCommand lines so they do not depend on which `node` comes first on PATH; absent
   * when `selfCommand` runs on its own ($POSTERN_SELF).
   */
  selfNode?: string;
  signals: Signals;
  /** Opens the controlling terminal for prompts; undefined when there is none. */
  openTerminal(): Terminal | undefined;
  clients: ClientFactory;
}

/** The real process's signals. */
export const processSignals: Signals = {
  on(signals, handler) {
    for (const s of signals) process.on(s, handler);
    return () => { for (const s of signals) process.off(s, handler); };
  },
};

/** Signals that never come: for a run inside another program (tests, the docs generator). */
export const noSignals: Signals = { on: () => () => {} };

/** The real clients, each loaded only when a command first asks for it (start-up stays fast). */
export const realClients: ClientFactory = {
  async web(opts) {
    const { WebClient } = await import('../client/web-client.ts');
    return new WebClient(opts);
  },
};

/** The real process's deps. */
export function processDeps(): Deps {
  return {
    io: { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
    env: process.env,
    homeDir: homedir(),
    cwd: process.cwd(),
    clock: systemClock,
    selfCommand: process.env.POSTERN_SELF ?? process.argv[1] ?? 'postern',
    ...(process.env.POSTERN_SELF || !process.argv[1] ? {} : { selfNode: process.execPath }),
    signals: processSignals,
    openTerminal: openControllingTerminal,
    clients: realClients,
  };
}

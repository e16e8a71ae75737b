/** `postern sessions …`: live sessions the logged-in user may see and join. Each subcommand lives beside this file. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import type { RunState } from '../../run-state.ts';
import { registerSessionsLs } from './ls.ts';

/** Registers `postern sessions` and its subcommands. */
export function registerSessions(program: Command, deps: Deps, _state: RunState): void {
  const sessions = program.command('sessions').description('live sessions you may see and join');
  registerSessionsLs(sessions, deps);
}

/** `postern recordings …`: session recordings the logged-in user may play. Each subcommand lives beside this file. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import type { RunState } from '../../run-state.ts';
import { registerRecordingsLs } from './ls.ts';

/** Registers `postern recordings` and its subcommands. */
export function registerRecordings(program: Command, deps: Deps, _state: RunState): void {
  const recordings = program.command('recordings').description('session recordings you may play');
  registerRecordingsLs(recordings, deps);
}

/** `postern ca …`: the cluster's certificate authorities. Each subcommand lives beside this file. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import type { RunState } from '../../run-state.ts';
import { registerCaExport } from './export.ts';

/** Registers `postern ca` and its subcommands. */
export function registerCa(program: Command, deps: Deps, _state: RunState): void {
  const ca = program.command('ca').description('the cluster\'s certificate authorities (on the auth server)');
  registerCaExport(ca, deps);
}

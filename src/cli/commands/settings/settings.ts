/** `postern settings …`: the cluster's settings on auth, for admins. Each subcommand lives beside this file. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import type { RunState } from '../../run-state.ts';
import { registerSettingsShow } from './show.ts';
import { registerSettingsSet } from './set.ts';

/** Registers `postern settings` and its subcommands. */
export function registerSettings(program: Command, deps: Deps, _state: RunState): void {
  const settings = program.command('settings').description('show or change the cluster\'s settings (on the auth server)');
  registerSettingsShow(settings, deps);
  registerSettingsSet(settings, deps);
}

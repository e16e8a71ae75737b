/** `postern roles …`: which logins users may use on which nodes. Each subcommand lives beside this file. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import type { RunState } from '../../run-state.ts';
import { registerRolesAdd } from './add.ts';
import { registerRolesLs } from './ls.ts';
import { registerRolesRm } from './rm.ts';

/** Registers `postern roles` and its subcommands. */
export function registerRoles(program: Command, deps: Deps, _state: RunState): void {
  const roles = program.command('roles').description('manage roles (on the auth server)');
  registerRolesAdd(roles, deps);
  registerRolesLs(roles, deps);
  registerRolesRm(roles, deps);
}

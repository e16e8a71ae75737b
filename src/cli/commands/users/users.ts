/** `postern users …`: manage users on the auth server. Each subcommand lives beside this file. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import type { RunState } from '../../run-state.ts';
import { registerUsersAdd } from './add.ts';
import { registerUsersLs } from './ls.ts';
import { registerUsersRm } from './rm.ts';
import { registerUsersReset } from './reset.ts';
import { registerUsersUpdate } from './update.ts';
import { registerUsersUnlock } from './unlock.ts';

/** Registers `postern users` and its subcommands. */
export function registerUsers(program: Command, deps: Deps, _state: RunState): void {
  const users = program.command('users').description('manage users (on the auth server)');
  registerUsersAdd(users, deps);
  registerUsersLs(users, deps);
  registerUsersRm(users, deps);
  registerUsersReset(users, deps);
  registerUsersUpdate(users, deps);
  registerUsersUnlock(users, deps);
}

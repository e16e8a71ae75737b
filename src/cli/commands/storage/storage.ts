/** `postern storage …`: the cluster's store. Each subcommand lives beside this file (storage/migrate.ts). */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import type { RunState } from '../../run-state.ts';
import { registerStorageMigrate } from './migrate.ts';

/** Registers `postern storage` and its subcommands. */
export function registerStorage(program: Command, deps: Deps, state: RunState): void {
  const storage = program.command('storage').description('the cluster\'s store (SQLite or PostgreSQL, on the auth server)');
  registerStorageMigrate(storage, deps, state);
}

/** `postern tokens …`: join tokens with which proxies join the cluster. Each subcommand lives beside this file. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import type { RunState } from '../../run-state.ts';
import { registerTokensAdd } from './add.ts';
import { registerTokensLs } from './ls.ts';
import { registerTokensRm } from './rm.ts';

/** Registers `postern tokens` and its subcommands. */
export function registerTokens(program: Command, deps: Deps, _state: RunState): void {
  const tokens = program.command('tokens').description('manage join tokens (on the auth server)');
  registerTokensAdd(tokens, deps);
  registerTokensLs(tokens, deps);
  registerTokensRm(tokens, deps);
}

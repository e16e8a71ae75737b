/** `postern nodes …`: the node registry, on the auth server. Each subcommand lives beside this file. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import type { RunState } from '../../run-state.ts';
import { registerNodesAdd } from './add.ts';
import { registerNodesLs } from './ls.ts';
import { registerNodesRm } from './rm.ts';
import { registerNodesUpdate } from './update.ts';
import { registerNodesRenew } from './renew.ts';

/** Registers `postern nodes` and its subcommands. */
export function registerNodes(program: Command, deps: Deps, _state: RunState): void {
  const nodes = program.command('nodes').description('manage the node registry (on the auth server)');
  registerNodesAdd(nodes, deps);
  registerNodesLs(nodes, deps);
  registerNodesRm(nodes, deps);
  registerNodesUpdate(nodes, deps);
  registerNodesRenew(nodes, deps);
}

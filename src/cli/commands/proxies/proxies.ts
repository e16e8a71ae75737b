/** `postern proxies …`: the proxies of the cluster. Each subcommand lives beside this file. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import type { RunState } from '../../run-state.ts';
import { registerProxiesLs } from './ls.ts';
import { registerProxiesRm } from './rm.ts';

/** Registers `postern proxies` and its subcommands. */
export function registerProxies(program: Command, deps: Deps, _state: RunState): void {
  const proxies = program.command('proxies').description('list and remove the cluster\'s proxies (on the auth server)');
  registerProxiesLs(proxies, deps);
  registerProxiesRm(proxies, deps);
}

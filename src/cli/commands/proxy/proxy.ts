/** `postern proxy …`: commands for OpenSSH. Each subcommand lives beside this file (proxy/ssh.ts). */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import type { RunState } from '../../run-state.ts';
import { registerProxySsh } from './ssh.ts';

/** Registers `postern proxy` and its subcommands. */
export function registerProxy(program: Command, deps: Deps, state: RunState): void {
  const proxy = program.command('proxy').description('commands for OpenSSH: the ProxyCommand');
  registerProxySsh(proxy, deps, state);
}

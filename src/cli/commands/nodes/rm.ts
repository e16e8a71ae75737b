/** `postern nodes rm NAME`: removes a node from the registry. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption } from '../../options.ts';
import { out } from '../../output.ts';

/** Registers `postern nodes rm`. */
export function registerNodesRm(nodes: Command, deps: Deps): void {
  nodes.command('rm').description('remove a node from the registry')
    .argument('<name>', 'node name')
    .addOption(dataDirOption())
    .action(async (name: string, opts: { dataDir?: string }) => {
      await withAdminClient(opts.dataDir, deps, (auth) => auth.removeNode({ name }));
      out(deps, `Node ${name} removed.`);
    });
}

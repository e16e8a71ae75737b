/** `postern nodes update NAME --labels …`: replaces a node's labels. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption } from '../../options.ts';
import { out } from '../../output.ts';
import { formatLabels, parseLabels } from '../../../api/labels.ts';

/** Registers `postern nodes update`. */
export function registerNodesUpdate(nodes: Command, deps: Deps): void {
  nodes.command('update').description('replace a node\'s labels')
    .argument('<name>', 'node name')
    .requiredOption('--labels <k=v,...>', 'the new labels (all of them; "" for none)')
    .addOption(dataDirOption())
    .action(async (name: string, opts: { labels: string; dataDir?: string }) => {
      const n = await withAdminClient(opts.dataDir, deps, (auth) => auth.updateNode({ name, labels: parseLabels(opts.labels) }));
      out(deps, `Node ${n.name}: ${formatLabels(n.labels) || 'no labels'}.`);
    });
}

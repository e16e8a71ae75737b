/** `postern nodes ls`: lists registered nodes. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption, formatOption } from '../../options.ts';
import { out, outJson, table, info } from '../../output.ts';
import { formatLabels } from '../../../api/labels.ts';

/** Registers `postern nodes ls`. */
export function registerNodesLs(nodes: Command, deps: Deps): void {
  nodes.command('ls').description('list registered nodes')
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action(async (opts: { format: string; dataDir?: string }) => {
      const list = await withAdminClient(opts.dataDir, deps, (auth) => auth.listNodes({}));
      if (opts.format === 'json') { outJson(deps, list); return; }
      if (list.length === 0) { info(deps, 'No nodes yet. Register one with:  postern nodes add --name NAME --addr HOST:PORT --host-key-file KEY.pub'); return; }
      out(deps, table(['Node', 'Address', 'Labels'], list.map((n) => [n.name, n.addr, formatLabels(n.labels)])));
    });
}

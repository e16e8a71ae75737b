/** `postern nodes renew NAME`: issues a new host certificate for a node. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption, formatOption } from '../../options.ts';
import { writeNodeFiles } from './node-files.ts';

/** Registers `postern nodes renew`. */
export function registerNodesRenew(nodes: Command, deps: Deps): void {
  nodes.command('renew').description('issue a new host certificate for a node')
    .argument('<name>', 'node name')
    .option('--out <dir>', 'where to write <name>-cert.pub and user_ca.pub', '.')
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action(async (name: string, opts: { out: string; format: 'text' | 'json'; dataDir?: string }) => {
      const r = await withAdminClient(opts.dataDir, deps, (auth) => auth.renewNode({ name }));
      writeNodeFiles(deps, r, opts.out, opts.format, 'renewed');
    });
}

/** `postern nodes add`: registers a node and issues a host certificate for its key. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption, formatOption } from '../../options.ts';
import { UsageError } from '../../../core/errors.ts';
import { parseLabels } from '../../../api/labels.ts';
import { writeNodeFiles } from './node-files.ts';

/** Options of `nodes add`. */
export interface NodesAddOptions { name: string; addr: string; labels?: string; hostKeyFile: string; out: string; format: 'text' | 'json'; dataDir?: string }

/** Registers `postern nodes add`. */
export function registerNodesAdd(nodes: Command, deps: Deps): void {
  nodes.command('add').description('register a node and issue a host certificate for its key')
    .requiredOption('--name <name>', 'the node name (a DNS label; NAME.<cluster> works too)')
    .requiredOption('--addr <host:port>', 'where the proxy reaches its sshd (default port 22)')
    .option('--labels <k=v,...>', 'labels, e.g. env=prod,team=web')
    .requiredOption('--host-key-file <file>', 'the node\'s host public key, e.g. /etc/ssh/ssh_host_ed25519_key.pub')
    .option('--out <dir>', 'where to write <name>-cert.pub and user_ca.pub', '.')
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action(async (opts: NodesAddOptions) => {
      let hostPublicKey: string;
      try { hostPublicKey = readFileSync(opts.hostKeyFile, 'utf8').trim(); } catch (err) {
        throw new UsageError(`cannot read --host-key-file ${opts.hostKeyFile}: ${(err as Error).message}`);
      }
      const labels = opts.labels ? parseLabels(opts.labels) : {};
      const r = await withAdminClient(opts.dataDir, deps, (auth) => auth.addNode({ name: opts.name, addr: opts.addr, labels, hostPublicKey }));
      writeNodeFiles(deps, r, opts.out, opts.format, 'registered');
    });
}

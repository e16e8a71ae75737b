/** `postern nodes add|ls|rm|update|renew`: the node registry, on the auth server. */
import type { Command } from 'commander';
import { readFileSync, mkdirSync } from 'node:fs';
import { resolve, join } from 'node:path';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import type { AddNodeResult } from '../../api/auth-types.ts';
import { withAdminClient } from '../admin.ts';
import { dataDirOption, formatOption } from '../options.ts';
import { out, outJson, table, info } from '../output.ts';
import { writeFileAtomic } from '../../core/fs.ts';
import { UsageError } from '../../core/errors.ts';
import { parseCertificate } from '../../ssh/certs.ts';
import { formatLabels, parseLabels } from '../../api/labels.ts';

/** Options of `nodes add`. */
export interface NodesAddOptions { name: string; addr: string; labels?: string; hostKeyFile: string; out: string; format: 'text' | 'json'; dataDir?: string }

/** Writes the host certificate and the user CA next to each other and says how to use them. */
function writeNodeFiles(deps: Deps, r: AddNodeResult, outDir: string, format: 'text' | 'json', verb: string): void {
  const dir = resolve(outDir);
  mkdirSync(dir, { recursive: true });
  const certFile = join(dir, `${r.node.name}-cert.pub`);
  const userCaFile = join(dir, 'user_ca.pub');
  writeFileAtomic(certFile, r.hostCertificate.trim() + '\n', 0o644);
  writeFileAtomic(userCaFile, r.userCaKeys.join('\n') + '\n', 0o644);
  if (format === 'json') {
    outJson(deps, { node: r.node, hostCertificate: r.hostCertificate, certFile, userCaFile });
    return;
  }
  const cert = parseCertificate(r.hostCertificate);
  out(deps, `Node ${r.node.name} ${verb} (${r.node.addr}${Object.keys(r.node.labels).length ? `, ${formatLabels(r.node.labels)}` : ''}).`);
  out(deps, `Its host certificate is for ${cert.principals.join(', ')} and valid for ${Math.round((cert.validBefore.getTime() - cert.validAfter.getTime()) / 86_400_000)} days, until ${cert.validBefore.toISOString()} (renew with  postern nodes renew ${r.node.name}).`);
  out(deps, `Wrote ${certFile} and ${userCaFile}. Copy them to the node and add to its sshd_config, next to its HostKey line:`);
  out(deps);
  out(deps, `  HostCertificate ${certFile}`);
  out(deps, `  TrustedUserCAKeys ${userCaFile}`);
  out(deps);
  out(deps, 'then reload sshd.');
}

/** Registers `postern nodes`. */
export function registerNodes(program: Command, deps: Deps, _state: RunState): void {
  const nodes = program.command('nodes').description('manage the node registry (on the auth server)');

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

  nodes.command('ls').description('list registered nodes')
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action(async (opts: { format: string; dataDir?: string }) => {
      const list = await withAdminClient(opts.dataDir, deps, (auth) => auth.listNodes({}));
      if (opts.format === 'json') { outJson(deps, list); return; }
      if (list.length === 0) { info(deps, 'No nodes yet. Register one with:  postern nodes add --name NAME --addr HOST:PORT --host-key-file KEY.pub'); return; }
      out(deps, table(['Node', 'Address', 'Labels'], list.map((n) => [n.name, n.addr, formatLabels(n.labels)])));
    });

  nodes.command('rm').description('remove a node from the registry')
    .argument('<name>', 'node name')
    .addOption(dataDirOption())
    .action(async (name: string, opts: { dataDir?: string }) => {
      await withAdminClient(opts.dataDir, deps, (auth) => auth.removeNode({ name }));
      out(deps, `Node ${name} removed.`);
    });

  nodes.command('update').description('replace a node\'s labels')
    .argument('<name>', 'node name')
    .requiredOption('--labels <k=v,...>', 'the new labels (all of them; "" for none)')
    .addOption(dataDirOption())
    .action(async (name: string, opts: { labels: string; dataDir?: string }) => {
      const n = await withAdminClient(opts.dataDir, deps, (auth) => auth.updateNode({ name, labels: parseLabels(opts.labels) }));
      out(deps, `Node ${n.name}: ${formatLabels(n.labels) || 'no labels'}.`);
    });

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

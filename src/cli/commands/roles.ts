/** `postern roles add|ls|rm`: which logins users may use on which nodes. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import type { Deps } from '../deps.ts';
import type { RunState } from '../program.ts';
import type { RoleSpec } from '../../auth/auth-client.ts';
import { withAdminClient } from '../admin.ts';
import { dataDirOption, formatOption, listArg } from '../options.ts';
import { out, outJson, table } from '../output.ts';
import { UsageError } from '../../core/errors.ts';

/** Parses `env=dev|staging,team=*` into node_labels. */
export function parseNodeLabels(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0) throw new UsageError(`invalid --node-labels part "${part}"`, { hint: "Use NAME=VALUE|VALUE, e.g. --node-labels 'env=dev|staging,team=web', or '*=*' for every node" });
    out[part.slice(0, i)] = part.slice(i + 1).split('|').filter(Boolean);
  }
  return out;
}

function readRoleFile(path: string): RoleSpec {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (err) { throw new UsageError(`cannot read ${path}: ${(err as Error).message}`); }
  try {
    return YAML.parse(text) as RoleSpec;
  } catch (err) {
    throw new UsageError(`${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** Registers `postern roles`. */
export function registerRoles(program: Command, deps: Deps, _state: RunState): void {
  const roles = program.command('roles').description('manage roles (on the auth server)');
  roles.command('add').description('add or replace a role: logins on nodes with matching labels')
    .argument('[name]', 'role name (or give --file)')
    .option('--logins <logins>', `comma-separated logins; {{internal.logins}} is the user's own`, listArg)
    .option('--node-labels <spec>', "labels a node needs: 'env=dev|staging,team=web'; '*=*' is every node")
    .option('--file <file>', 'a YAML role: name, logins, node_labels')
    .addOption(dataDirOption())
    .addHelpText('after', '\nExample:\n  postern roles add dev --logins ubuntu --node-labels \'env=dev|staging\'\n  postern users add bob --logins bob --roles dev')
    .action(async (name: string | undefined, opts: { logins?: string[]; nodeLabels?: string; file?: string; dataDir?: string }) => {
      let spec: RoleSpec;
      if (opts.file) {
        if (name || opts.logins || opts.nodeLabels) throw new UsageError('--file goes alone: the file holds name, logins and node_labels');
        spec = readRoleFile(opts.file);
      } else {
        if (!name || !opts.logins || !opts.nodeLabels) throw new UsageError('a role needs a name, --logins and --node-labels (or --file)');
        spec = { name, logins: opts.logins, node_labels: parseNodeLabels(opts.nodeLabels) };
      }
      const r = await withAdminClient(opts.dataDir, deps, (auth) => auth.upsertRole(spec));
      out(deps, `Role ${r.name} saved.`);
    });
  roles.command('ls').description('list roles')
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action(async (opts: { format: string; dataDir?: string }) => {
      const list = await withAdminClient(opts.dataDir, deps, (auth) => auth.listRoles());
      if (opts.format === 'json') { outJson(deps, list); return; }
      out(deps, table(['Role', 'Logins', 'Node labels', 'Built in'], list.map((r) => [
        r.name, r.logins.join(','), Object.entries(r.node_labels).map(([k, v]) => `${k}=${v.join('|')}`).join(','), r.builtin ? 'yes' : '',
      ])));
    });
  roles.command('rm').description('remove a role (no user may hold it)')
    .argument('<name>', 'role name')
    .addOption(dataDirOption())
    .action(async (name: string, opts: { dataDir?: string }) => {
      await withAdminClient(opts.dataDir, deps, (auth) => auth.deleteRole({ name }));
      out(deps, `Role ${name} removed.`);
    });
}

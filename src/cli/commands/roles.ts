/** `postern roles add|ls|rm`: which logins users may use on which nodes. */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import type { RoleSpec } from '../../api/auth-types.ts';
import { withAdminClient } from '../admin.ts';
import { dataDirOption, formatOption, listArg } from '../options.ts';
import { out, outJson, table } from '../output.ts';
import { UsageError } from '../../core/errors.ts';

/**
 * Parses `--node-labels`: comma-separated NAME=VALUES, VALUES separated by "|", "*" for any
 * value; `*=*` is every node. `env=dev|staging,team=*` is { env: [dev, staging], team: ['*'] }.
 * A name given twice adds its values.
 */
export function parseNodeLabels(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = part.indexOf('=');
    const values = part.slice(i + 1).split('|').map((s) => s.trim()).filter(Boolean);
    if (i <= 0 || values.length === 0) {
      throw new UsageError(`invalid --node-labels part "${part}"`, { hint: "Use NAME=VALUE|VALUE, e.g. --node-labels 'env=dev|staging,team=web', or '*=*' for every node" });
    }
    const k = part.slice(0, i).trim();
    out[k] = [...new Set([...(out[k] ?? []), ...values])];
  }
  if (Object.keys(out).length === 0) throw new UsageError('--node-labels is empty', { hint: "e.g. --node-labels 'env=dev|staging', or '*=*' for every node" });
  return out;
}

/** A list in a role file: YAML lets one value stand alone (`logins: ubuntu`, `env: dev`). */
const asList = (v: unknown): unknown => (typeof v === 'string' ? [v] : v);

/** Reads a YAML role file (name, logins, node_labels), taking single values for one-item lists. */
export function readRoleFile(path: string): RoleSpec {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (err) { throw new UsageError(`cannot read ${path}: ${(err as Error).message}`); }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new UsageError(`${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new UsageError(`${path} must hold one role: name, logins and node_labels`, { hint: "e.g.\n  name: dev\n  logins: [ubuntu]\n  node_labels:\n    env: [dev, staging]" });
  }
  const d = doc as Record<string, unknown>;
  const unknown = Object.keys(d).filter((k) => !['name', 'logins', 'node_labels', 'join_sessions'].includes(k));
  if (unknown.length > 0) throw new UsageError(`${path}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`, { hint: 'A role file has name, logins, node_labels and optionally join_sessions' });
  const labels = d.node_labels;
  return {
    name: d.name as string,
    logins: asList(d.logins) as string[],
    node_labels: (typeof labels === 'object' && labels !== null && !Array.isArray(labels)
      ? Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, asList(v)]))
      : labels) as Record<string, string[]>,
    // Whose live sessions holders may join, e.g. [{ roles: [access], modes: [observer] }]; auth checks it.
    ...(d.join_sessions !== undefined ? { join_sessions: d.join_sessions as RoleSpec['join_sessions'] } : {}),
  };
}

const labelRules = (r: RoleSpec): string => Object.entries(r.node_labels).map(([k, v]) => `${k}=${v.join('|')}`).join(',');

/** Registers `postern roles`. */
export function registerRoles(program: Command, deps: Deps, _state: RunState): void {
  const roles = program.command('roles').description('manage roles (on the auth server)');
  roles.command('add').description('add or replace a role: logins on nodes with matching labels')
    .argument('[name]', 'role name (or give --file)')
    .option('--logins <logins>', `comma-separated logins; {{internal.logins}} is the user's own`, listArg)
    .option('--node-labels <spec>', "the labels a node must have: NAME=VALUE[|VALUE…] joined by \",\"; a value \"*\" is any value; '*=*' is every node")
    .option('--file <file>', 'a YAML role: name, logins, node_labels')
    .addOption(dataDirOption())
    .addHelpText('after', `
A node matches the role when it has every label named, with one of the values listed.
{{internal.logins}} in --logins stands for the logins given to the user with  users add --logins.

Examples:
  postern roles add dev --logins ubuntu --node-labels 'env=dev|staging'
  postern roles add web-ops --logins '{{internal.logins}},deploy' --node-labels 'env=prod,team=web|api'
  postern roles add everything --logins root --node-labels '*=*'
  postern roles add --file dev.yaml          # name: dev / logins: [ubuntu] / node_labels: { env: [dev, staging] }
  postern users add bob --logins bob --roles dev`)
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
      out(deps, `Role ${r.name} saved: logins ${r.logins.join(',')} on nodes with ${labelRules(r)}.`);
    });
  roles.command('ls').description('list roles')
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action(async (opts: { format: string; dataDir?: string }) => {
      const list = await withAdminClient(opts.dataDir, deps, (auth) => auth.listRoles());
      if (opts.format === 'json') { outJson(deps, list); return; }
      out(deps, table(['Role', 'Logins', 'Node labels', 'Built in'], list.map((r) => [
        r.name, r.logins.join(','), labelRules(r), r.builtin ? 'yes' : '',
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

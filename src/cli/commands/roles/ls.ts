/** `postern roles ls`: lists roles. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption, formatOption } from '../../options.ts';
import { out, outJson, table } from '../../output.ts';
import { labelRules } from './add.ts';

/** Registers `postern roles ls`. */
export function registerRolesLs(roles: Command, deps: Deps): void {
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
}

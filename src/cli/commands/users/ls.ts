/** `postern users ls`: lists users. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption, formatOption } from '../../options.ts';
import { out, outJson, table, info } from '../../output.ts';

/** Registers `postern users ls`. */
export function registerUsersLs(users: Command, deps: Deps): void {
  users.command('ls').description('list users')
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action(async (opts: { format: string; dataDir?: string }) => {
      const list = await withAdminClient(opts.dataDir, deps, (auth) => auth.listUsers());
      if (opts.format === 'json') { outJson(deps, list); return; }
      if (list.length === 0) { info(deps, 'No users yet. Add one with:  postern users add NAME --logins LOGINS'); return; }
      out(deps, table(['User', 'Roles', 'Logins', 'Status'], list.map((u) => [
        u.name, u.roles.join(','), u.logins.join(','), u.status === 'locked' ? `locked until ${u.lockedUntil}` : u.status,
      ])));
    });
}

/** `postern roles rm NAME`: removes a role that no user holds. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption } from '../../options.ts';
import { out } from '../../output.ts';

/** Registers `postern roles rm`. */
export function registerRolesRm(roles: Command, deps: Deps): void {
  roles.command('rm').description('remove a role (no user may hold it)')
    .argument('<name>', 'role name')
    .addOption(dataDirOption())
    .action(async (name: string, opts: { dataDir?: string }) => {
      await withAdminClient(opts.dataDir, deps, (auth) => auth.deleteRole({ name }));
      out(deps, `Role ${name} removed.`);
    });
}

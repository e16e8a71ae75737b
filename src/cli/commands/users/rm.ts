/** `postern users rm NAME`: removes a user. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption } from '../../options.ts';
import { out } from '../../output.ts';

/** Registers `postern users rm`. */
export function registerUsersRm(users: Command, deps: Deps): void {
  users.command('rm').description('remove a user')
    .argument('<name>', 'user name')
    .addOption(dataDirOption())
    .action(async (name: string, opts: { dataDir?: string }) => {
      await withAdminClient(opts.dataDir, deps, (auth) => auth.deleteUser({ name }));
      out(deps, `User ${name} removed.`);
    });
}

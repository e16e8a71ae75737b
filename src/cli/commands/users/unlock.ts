/** `postern users unlock NAME`: clears a user's lockout after too many failed logins. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption } from '../../options.ts';
import { out } from '../../output.ts';

/** Registers `postern users unlock`. */
export function registerUsersUnlock(users: Command, deps: Deps): void {
  users.command('unlock').description('clear a user\'s lockout after failed logins (password and second factor stay)')
    .argument('<name>', 'user name')
    .addOption(dataDirOption())
    .addHelpText('after', `
Too many failed logins lock a user for a while (settings lockout_attempts, lockout_window,
lockout_duration). This ends the lock now; audited as user.unlocked. To revoke a forgotten
password or a lost authenticator instead:  postern users reset NAME

Example:
  postern users unlock alice`)
    .action(async (name: string, opts: { dataDir?: string }) => {
      await withAdminClient(opts.dataDir, deps, (auth) => auth.unlockUser({ name }));
      out(deps, `User ${name} unlocked: they may log in again.`);
    });
}

/** `postern users reset NAME`: revokes a user's password and second factor and prints a new invite. */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption, durationArg, formatOption } from '../../options.ts';
import { certificatePin } from '../../../core/tls-pin.ts';
import { printInvite } from './invite.ts';

/** Registers `postern users reset`. */
export function registerUsersReset(users: Command, deps: Deps): void {
  users.command('reset').description('revoke a user\'s password and second factor and print a new invite link')
    .argument('<name>', 'user name')
    .addOption(new Option('--ttl <duration>', 'how long the invite is valid, at most 48h').argParser(durationArg('--ttl')).default(3_600_000, '1h'))
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action(async (name: string, opts: { ttl: number; format: 'text' | 'json'; dataDir?: string }) => {
      const { r, pin } = await withAdminClient(opts.dataDir, deps, async (auth, identity) => ({
        r: await auth.resetUser({ name, inviteTtlMs: opts.ttl }),
        pin: certificatePin(identity.caPem),
      }));
      printInvite(deps, r, pin, opts.format, 'reset: the old password and second factor no longer work');
    });
}

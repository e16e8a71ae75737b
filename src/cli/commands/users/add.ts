/** `postern users add NAME`: adds a user and prints an invite. */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption, durationArg, formatOption, listArg } from '../../options.ts';
import { certificatePin } from '../../../core/tls-pin.ts';
import { printInvite } from './invite.ts';

/** Options of `users add`. */
export interface UsersAddOptions { logins: string[]; roles: string[]; ttl?: number; format: 'text' | 'json'; dataDir?: string }

/** Adds a user and prints the invite. */
export async function runUsersAdd(name: string, opts: UsersAddOptions, deps: Deps): Promise<void> {
  const { r, pin } = await withAdminClient(opts.dataDir, deps, async (auth, identity) => ({
    r: await auth.createUser({ name, logins: opts.logins, roles: opts.roles, inviteTtlMs: opts.ttl ?? 3_600_000 }),
    pin: certificatePin(identity.caPem),
  }));
  printInvite(deps, r, pin, opts.format, 'added');
}

/** Registers `postern users add`. */
export function registerUsersAdd(users: Command, deps: Deps): void {
  users.command('add').description('add a user and print an invite link')
    .argument('<name>', 'user name')
    .requiredOption('--logins <logins>', 'comma-separated OS logins the user may use (certificate principals)', listArg)
    .addOption(new Option('--roles <roles>', 'comma-separated roles: access, admin, or one that postern roles ls lists').argParser(listArg).default(['access'], 'access'))
    .addOption(new Option('--ttl <duration>', 'how long the invite is valid, at most 48h').argParser(durationArg('--ttl')).default(3_600_000, '1h'))
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action((name: string, opts: UsersAddOptions) => runUsersAdd(name, opts, deps));
}

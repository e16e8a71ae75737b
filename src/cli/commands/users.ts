/** `postern users add|ls|rm|reset`: manage users on the auth server. */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { withAdminClient } from '../admin.ts';
import { dataDirOption, durationArg, formatOption, listArg } from '../options.ts';
import { out, outJson, table, colours, info } from '../output.ts';
import type { InviteResult } from '../../api/types.ts';

/** Options of `users add`. */
export interface UsersAddOptions { logins: string[]; roles: string[]; ttl?: number; format: 'text' | 'json'; dataDir?: string }

function printInvite(deps: Deps, r: InviteResult, format: 'text' | 'json', verb: string): void {
  if (format === 'json') { outJson(deps, r); return; }
  const c = colours(deps);
  out(deps, `User ${c.bold(r.user)} ${verb}. Share this invite link with them; it works once and expires at ${r.expiresAt}:`);
  out(deps);
  out(deps, `  ${r.inviteUrl}`);
  out(deps);
  out(deps, `They open it in a browser, or run:  postern signup ${r.inviteUrl}`);
}

/** Adds a user and prints the invite. */
export async function runUsersAdd(name: string, opts: UsersAddOptions, deps: Deps): Promise<void> {
  const r = await withAdminClient(opts.dataDir, deps, (auth) =>
    auth.createUser({ name, logins: opts.logins, roles: opts.roles, inviteTtlMs: opts.ttl ?? 3_600_000 }));
  printInvite(deps, r, opts.format, 'added');
}

/** Registers `postern users`. */
export function registerUsers(program: Command, deps: Deps, _state: RunState): void {
  const users = program.command('users').description('manage users (on the auth server)');

  users.command('add').description('add a user and print an invite link')
    .argument('<name>', 'user name')
    .requiredOption('--logins <logins>', 'comma-separated OS logins the user may use (certificate principals)', listArg)
    .addOption(new Option('--roles <roles>', 'comma-separated roles: access, admin, or one that postern roles ls lists').argParser(listArg).default(['access'], 'access'))
    .addOption(new Option('--ttl <duration>', 'how long the invite is valid, at most 48h').argParser(durationArg('--ttl')).default(3_600_000, '1h'))
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action((name: string, opts: UsersAddOptions) => runUsersAdd(name, opts, deps));

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

  users.command('rm').description('remove a user')
    .argument('<name>', 'user name')
    .addOption(dataDirOption())
    .action(async (name: string, opts: { dataDir?: string }) => {
      await withAdminClient(opts.dataDir, deps, (auth) => auth.deleteUser({ name }));
      out(deps, `User ${name} removed.`);
    });

  users.command('reset').description('revoke a user\'s password and second factor and print a new invite link')
    .argument('<name>', 'user name')
    .addOption(new Option('--ttl <duration>', 'how long the invite is valid, at most 48h').argParser(durationArg('--ttl')).default(3_600_000, '1h'))
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action(async (name: string, opts: { ttl: number; format: 'text' | 'json'; dataDir?: string }) => {
      const r = await withAdminClient(opts.dataDir, deps, (auth) => auth.resetUser({ name, inviteTtlMs: opts.ttl }));
      printInvite(deps, r, opts.format, 'reset: the old password and second factor no longer work');
    });
}

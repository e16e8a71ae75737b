/** `postern users update NAME`: changes a user's roles and logins in place, without a new invite. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption, formatOption, listArg } from '../../options.ts';
import { out, outJson } from '../../output.ts';
import { UsageError } from '../../../core/errors.ts';
import type { UpdateUserRequest } from '../../../api/auth-types.ts';

/** Options of `users update`. */
export interface UsersUpdateOptions {
  setRoles?: string[]; addRoles?: string[]; removeRoles?: string[];
  setLogins?: string[]; addLogins?: string[]; removeLogins?: string[];
  format: 'text' | 'json'; dataDir?: string;
}

/** Changes the user and prints what they now have. */
export async function runUsersUpdate(name: string, opts: UsersUpdateOptions, deps: Deps): Promise<void> {
  const { setRoles, addRoles, removeRoles, setLogins, addLogins, removeLogins } = opts;
  const req: UpdateUserRequest = { name, ...{ setRoles, addRoles, removeRoles, setLogins, addLogins, removeLogins } };
  for (const k of Object.keys(req) as Array<keyof UpdateUserRequest>) if (req[k] === undefined) delete req[k];
  if (Object.keys(req).length === 1) {
    throw new UsageError('nothing to change', { hint: `e.g.  postern users update ${name} --add-roles dev  or  --set-logins ubuntu,root` });
  }
  const u = await withAdminClient(opts.dataDir, deps, (auth) => auth.updateUser(req));
  if (opts.format === 'json') { outJson(deps, u); return; }
  out(deps, `User ${u.name} updated: roles ${u.roles.join(',')}; logins ${u.logins.join(',')}.`);
  out(deps, 'The change applies from their next login (postern login); certificates issued before keep their logins until they expire.');
}

/** Registers `postern users update`. */
export function registerUsersUpdate(users: Command, deps: Deps): void {
  users.command('update').description('change a user\'s roles and logins (no new invite)')
    .argument('<name>', 'user name')
    .option('--set-roles <roles>', 'comma-separated roles that replace the user\'s roles', listArg)
    .option('--add-roles <roles>', 'comma-separated roles to add', listArg)
    .option('--remove-roles <roles>', 'comma-separated roles to remove', listArg)
    .option('--set-logins <logins>', 'comma-separated OS logins that replace the user\'s logins', listArg)
    .option('--add-logins <logins>', 'comma-separated OS logins to add', listArg)
    .option('--remove-logins <logins>', 'comma-separated OS logins to remove', listArg)
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .addHelpText('after', `
--set-* replaces a list, then --add-* adds to it and --remove-* takes away. A user keeps at
least one role and one login. The change is audited (user.updated) and applies from the
user's next login.

Examples:
  postern users update alice --add-roles dev
  postern users update alice --set-logins ubuntu,deploy
  postern users update bob --remove-roles admin --add-logins postgres`)
    .action((name: string, opts: UsersUpdateOptions) => runUsersUpdate(name, opts, deps));
}

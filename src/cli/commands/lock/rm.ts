/** `postern lock rm ID`: removes a lock before it expires. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption } from '../../options.ts';
import { out } from '../../output.ts';
import { escapeControl } from '../../../core/text.ts';
import { lockTargetText } from '../../../api/locks.ts';
import { subcommandOptions } from './options.ts';

/** Registers `postern lock rm`. */
export function registerLockRm(lock: Command, deps: Deps): void {
  lock.command('rm').description('remove a lock: what it stopped is allowed again')
    .argument('<id>', 'the ID that lock ls shows (or a unique prefix of it, at least 4 characters)')
    .addOption(dataDirOption())
    .addHelpText('after', `
Example:
  postern lock rm 3f2a9c1e`)
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const opts = subcommandOptions<{ dataDir?: string }>(cmd);
      const removed = await withAdminClient(opts.dataDir, deps, (auth) => auth.deleteLock({ id }));
      out(deps, `Lock ${removed.id} on ${escapeControl(lockTargetText(removed.target))} removed.`);
    });
}

/** `postern lock ls`: the locks in force. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption, formatOption } from '../../options.ts';
import { out, outJson, info, table } from '../../output.ts';
import { escapeControl } from '../../../core/text.ts';
import { lockTargetText } from '../../../api/locks.ts';
import { subcommandOptions } from './options.ts';

/** Registers `postern lock ls`. */
export function registerLockLs(lock: Command, deps: Deps): void {
  lock.command('ls').description('list the locks in force')
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .addHelpText('after', `
Examples:
  postern lock ls
  postern lock ls --format json`)
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = subcommandOptions<{ format: string; dataDir?: string }>(cmd);
      const list = await withAdminClient(opts.dataDir, deps, (auth) => auth.listLocks());
      if (opts.format === 'json') { outJson(deps, list); return; }
      if (list.length === 0) { info(deps, 'No locks. Make one with:  postern lock --user NAME --reason TEXT'); return; }
      out(deps, table(['ID', 'Target', 'Reason', 'Created', 'By', 'Expires'], list.map((l) => [
        l.id, escapeControl(lockTargetText(l.target)), escapeControl(l.reason || '-'), l.createdAt, escapeControl(l.createdBy), l.expiresAt ?? 'never',
      ])));
    });
}

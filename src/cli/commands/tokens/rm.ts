/** `postern tokens rm ID`: removes a join token before it expires. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption } from '../../options.ts';
import { out } from '../../output.ts';

/** Registers `postern tokens rm`. */
export function registerTokensRm(tokens: Command, deps: Deps): void {
  tokens.command('rm').description('remove a join token: no proxy can join with it any more')
    .argument('<id>', 'the ID that tokens ls shows (a unique prefix of it, or the token itself)')
    .addOption(dataDirOption())
    .action(async (id: string, opts: { dataDir?: string }) => {
      await withAdminClient(opts.dataDir, deps, (auth) => auth.deleteToken({ id }));
      out(deps, `Join token ${id} removed.`);
    });
}

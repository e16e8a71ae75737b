/** `postern tokens ls`: the join tokens that have not expired. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption, formatOption } from '../../options.ts';
import { out, outJson, info, table } from '../../output.ts';

/** Registers `postern tokens ls`. */
export function registerTokensLs(tokens: Command, deps: Deps): void {
  tokens.command('ls').description('list the join tokens that have not expired (by id: a token is stored only as its hash)')
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action(async (opts: { format: string; dataDir?: string }) => {
      const list = await withAdminClient(opts.dataDir, deps, (auth) => auth.listTokens());
      if (opts.format === 'json') { outJson(deps, list); return; }
      if (list.length === 0) { info(deps, 'No join tokens. Make one with:  postern tokens add --type proxy'); return; }
      out(deps, table(['ID', 'Type', 'Created', 'Expires'], list.map((t) => [t.id, t.type, t.createdAt, t.expiresAt])));
    });
}

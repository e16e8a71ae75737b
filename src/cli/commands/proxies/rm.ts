/** `postern proxies rm NAME`: forgets a proxy and revokes its identity. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption } from '../../options.ts';
import { out } from '../../output.ts';

/** Registers `postern proxies rm`. */
export function registerProxiesRm(proxies: Command, deps: Deps): void {
  proxies.command('rm').description('remove a proxy and revoke its identity: every call it makes to auth is refused from now on')
    .argument('<name>', 'the proxy\'s name, as proxies ls shows it')
    .addOption(dataDirOption())
    .action(async (name: string, opts: { dataDir?: string }) => {
      await withAdminClient(opts.dataDir, deps, (auth) => auth.removeProxy({ name }));
      out(deps, `Proxy ${name} removed; its identity is revoked. To bring it back, join it again with a new token.`);
    });
}

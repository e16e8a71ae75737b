/** `postern proxies ls`: the proxies auth knows, by their heartbeats and joined identities. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption, formatOption } from '../../options.ts';
import { out, outJson, info, table } from '../../output.ts';

/** Registers `postern proxies ls`. */
export function registerProxiesLs(proxies: Command, deps: Deps): void {
  proxies.command('ls').description('list the proxies: addresses, last heartbeat, when they joined, whether their identity was revoked')
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action(async (opts: { format: string; dataDir?: string }) => {
      const list = await withAdminClient(opts.dataDir, deps, (auth) => auth.listProxies());
      if (opts.format === 'json') { outJson(deps, list); return; }
      if (list.length === 0) { info(deps, 'No proxies. A proxy joins with a token from:  postern tokens add --type proxy'); return; }
      out(deps, table(['Name', 'Web', 'SSH', 'Last seen', 'Joined', 'Status'], list.map((p) => [
        p.name, p.webPublicAddr ?? '-', p.sshPublicAddr ?? '-', p.lastSeen ?? '-', p.joinedAt ?? '(in auth\'s process)', p.revokedAt ? `revoked ${p.revokedAt}` : 'active',
      ])));
    });
}

/** `postern ca export`: a CA's public key, as the authorized_keys line sshd's TrustedUserCAKeys takes. */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { withAdminClient } from '../admin.ts';
import { dataDirOption } from '../options.ts';
import { out } from '../output.ts';

/** Registers `postern ca`. */
export function registerCa(program: Command, deps: Deps, _state: RunState): void {
  const ca = program.command('ca').description('the cluster\'s certificate authorities (on the auth server)');
  ca.command('export').description('print a CA public key (user: for sshd TrustedUserCAKeys; host: for @cert-authority)')
    .addOption(new Option('--type <type>', 'which CA').choices(['user', 'host']).makeOptionMandatory())
    .addOption(dataDirOption())
    .action(async (opts: { type: 'user' | 'host'; dataDir?: string }) => {
      const keys = await withAdminClient(opts.dataDir, deps, (auth) => auth.caKeys({ type: opts.type }));
      for (const k of keys) out(deps, k);
    });
}

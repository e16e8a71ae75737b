/** `postern tokens add`: a join token with which a proxy joins the cluster. */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { readAdminIdentity, withAdminClient } from '../admin.ts';
import { dataDirOption, durationArg, formatOption } from '../options.ts';
import { out, outJson } from '../output.ts';
import { certificatePin } from '../../core/tls-pin.ts';

/** Registers `postern tokens`. */
export function registerTokens(program: Command, deps: Deps, _state: RunState): void {
  const tokens = program.command('tokens').description('manage join tokens (on the auth server)');
  tokens.command('add').description('make a join token for a proxy')
    .addOption(new Option('--type <type>', 'what may join with it').choices(['proxy']).makeOptionMandatory())
    .addOption(new Option('--ttl <duration>', 'how long the token is valid').argParser(durationArg('--ttl')).default(3_600_000, '1h'))
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action(async (opts: { type: 'proxy'; ttl: number; format: string; dataDir?: string }) => {
      const r = await withAdminClient(opts.dataDir, deps, (auth) => auth.createToken({ type: opts.type, ttlMs: opts.ttl }));
      const identity = readAdminIdentity(opts.dataDir, deps);
      const pin = certificatePin(identity.caPem);
      if (opts.format === 'json') { outJson(deps, { ...r, caPin: pin }); return; }
      out(deps, `The join token ${r.token} is valid until ${r.expiresAt}.`);
      out(deps, 'Start a proxy with it (replace AUTH_HOST with an address of this auth server that the proxy can reach):');
      out(deps);
      out(deps, `  postern serve --roles proxy --auth-server AUTH_HOST:${identity.authAddr.split(':').pop()} --join-token ${r.token} --ca-pin ${pin}`);
    });
}

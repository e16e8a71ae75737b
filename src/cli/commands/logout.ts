/** `postern logout`: removes the current profile's keys, certificate and agent entries. */
import type { Command } from 'commander';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { tshHome } from '../../client/paths.ts';
import { loadProfile, removeProfile } from '../../client/profile.ts';
import { readKeys } from '../../client/keystore.ts';
import { AgentClient } from '../../ssh/agent.ts';
import { out, info } from '../output.ts';

/** Logs out of the current profile (or the one for --proxy). */
export async function runLogout(opts: { proxy?: string }, deps: Deps): Promise<void> {
  const home = tshHome(deps.env, deps.homeDir);
  const { profile, paths } = loadProfile(home, opts.proxy?.replace(/:\d+$/, ''));
  let keys: ReturnType<typeof readKeys> | undefined;
  try { keys = readKeys(paths); } catch { keys = undefined; }
  if (keys && deps.env.SSH_AUTH_SOCK) {
    try {
      const agent = await AgentClient.connect(deps.env.SSH_AUTH_SOCK);
      try {
        // The agent holds the key twice: plain and with its certificate.
        await agent.remove(keys.certificate.raw).catch(() => {});
        await agent.remove(keys.keyPair.publicWire).catch(() => {});
      } finally {
        agent.close();
      }
    } catch (err) {
      info(deps, `warning: could not remove the key from ssh-agent: ${(err as Error).message}`);
    }
  }
  removeProfile(home, profile, paths);
  out(deps, `Logged out ${profile.user} from ${profile.proxyHost}.`);
}

/** Registers `postern logout`. */
export function registerLogout(program: Command, deps: Deps, _state: RunState): void {
  program.command('logout').description('remove the current login\'s keys and certificate, here and in ssh-agent')
    .option('--proxy <host>', 'the profile to log out of (default: the current one)')
    .action((opts: { proxy?: string }) => runLogout(opts, deps));
}

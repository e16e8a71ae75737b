/** `postern status`: who you are logged in as, until when, and whether the agent has the key. */
import type { Command } from 'commander';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { tshHome } from '../../client/paths.ts';
import { loadProfile } from '../../client/profile.ts';
import { readKeys } from '../../client/keystore.ts';
import { AgentClient } from '../../ssh/agent.ts';
import { CertificateExpiredError, ExitCode } from '../../core/errors.ts';
import { formatDuration } from '../../core/durations.ts';
import { escapeControl } from '../../core/text.ts';
import { formatOption } from '../options.ts';
import { out, outJson, colours } from '../output.ts';

/** Whether the agent at `socket` holds this certificate. */
async function certInAgent(socket: string | undefined, certRaw: Buffer): Promise<boolean> {
  if (!socket) return false;
  try {
    const agent = await AgentClient.connect(socket);
    try {
      return (await agent.list()).some((id) => id.wire.equals(certRaw));
    } finally {
      agent.close();
    }
  } catch {
    return false;
  }
}

/** Prints the current profile's state; exit 4 when the certificate has expired. */
export async function runStatus(opts: { format: 'text' | 'json' }, deps: Deps, state: RunState): Promise<void> {
  const home = tshHome(deps.env, deps.homeDir);
  const { profile, paths } = loadProfile(home);
  const { certificate } = readKeys(paths);
  const now = deps.clock.now();
  const left = certificate.validBefore.getTime() - now.getTime();
  const inAgent = await certInAgent(deps.env.SSH_AUTH_SOCK, certificate.raw);
  if (opts.format === 'json') {
    outJson(deps, {
      proxy: profile.webProxyAddr, cluster: profile.cluster, user: profile.user, logins: certificate.principals,
      validUntil: certificate.validBefore.toISOString(), inAgent, expired: left <= 0,
    });
    if (left <= 0) state.exitCode = ExitCode.notLoggedIn;
    return;
  }
  const c = colours(deps);
  out(deps, `${c.green('>')} Profile URL:  https://${escapeControl(profile.webProxyAddr)}`);
  out(deps, `  Logged in as: ${escapeControl(profile.user)}`);
  out(deps, `  Cluster:      ${escapeControl(profile.cluster)}`);
  out(deps, `  Logins:       ${certificate.principals.map(escapeControl).join(', ')}`);
  out(deps, `  Valid until:  ${certificate.validBefore.toISOString()} ${left > 0 ? `[valid for ${formatDuration(left)}]` : c.red('[EXPIRED]')}`);
  out(deps, `  In agent:     ${inAgent ? 'yes' : 'no'}`);
  if (left <= 0) throw new CertificateExpiredError(`the certificate for ${profile.user} expired at ${certificate.validBefore.toISOString()}`);
}

/** Registers `postern status`. */
export function registerStatus(program: Command, deps: Deps, state: RunState): void {
  program.command('status').description('show the current login: user, cluster, logins, time left, agent')
    .addOption(formatOption(['text', 'json']))
    .action((opts: { format: 'text' | 'json' }) => runStatus(opts, deps, state));
}

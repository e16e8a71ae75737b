/** `postern login`: a certificate for a fresh key, stored in ~/.tsh and added to the agent. */
import type { Command } from 'commander';
import { Option } from 'commander';
import ora from 'ora';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { login } from '../../client/login.ts';
import type { SshKeyPair } from '../../ssh/keys.ts';
import { currentProfileName, loadProfile } from '../../client/profile.ts';
import { tshHome } from '../../client/paths.ts';
import { durationArg } from '../options.ts';
import { askSecret, askText, readSecretStdin } from '../prompt.ts';
import { UsageError } from '../../core/errors.ts';
import { isPin } from '../../core/tls-pin.ts';
import { parseHostPort, formatHostPort } from '../../core/text.ts';
import { formatDuration } from '../../core/durations.ts';
import { DEFAULT_WEB_PORT } from '../../api/types.ts';
import { out, info, colours, decorated } from '../output.ts';
import { escapeControl } from '../../core/text.ts';

/** Options of `postern login`. */
export interface LoginOptions {
  proxy?: string;
  user?: string;
  ttl?: number;
  otp?: string;
  passwordStdin?: boolean;
  caPin?: string;
  insecure?: boolean;
  addKeysToAgent: 'auto' | 'yes' | 'no';
  /** Not a flag: certify the stored key pair again instead of a fresh one (a login again after expiry, relogin.ts). */
  reuseKey?: SshKeyPair;
}

/** What a login did, for a caller that goes on (relogin.ts). */
export interface LoginSummary {
  /** Whether the key and the new certificate are in the ssh-agent now. */
  agent: 'added' | 'skipped' | { error: string };
  validBefore: Date;
}

/** Logs in, prompting for what the flags did not give. */
export async function runLogin(opts: LoginOptions, deps: Deps): Promise<LoginSummary> {
  const home = tshHome(deps.env, deps.homeDir);
  // Defaults come from the current profile, so a second `postern login` needs no flags.
  let previous: ReturnType<typeof loadProfile>['profile'] | undefined;
  try { if (currentProfileName(home)) previous = loadProfile(home).profile; } catch { previous = undefined; }
  const proxyText = opts.proxy ?? deps.env.POSTERN_PROXY ?? previous?.webProxyAddr;
  if (!proxyText) throw new UsageError('which proxy? --proxy is required for the first login', { hint: 'postern login --proxy proxy.example.com:3080 --user NAME' });
  const proxy = parseHostPort(proxyText, DEFAULT_WEB_PORT);
  const samePrevious = previous && previous.proxyHost === proxy.host;
  const caPin = opts.caPin ?? (samePrevious ? previous?.caPin : undefined);
  if (caPin && !isPin(caPin)) throw new UsageError(`invalid --ca-pin "${caPin}"`, { hint: 'A pin looks like sha256:<64 hex digits>, as `postern serve` prints it' });
  const insecure = opts.insecure ?? (samePrevious ? previous?.insecure : undefined) ?? false;
  const web = await deps.clients.web({ host: proxy.host, port: proxy.port, caPin, insecure });
  try {
    const ping = await web.ping();
    const user = opts.user ?? deps.env.POSTERN_USER ?? (samePrevious ? previous?.user : undefined)
      ?? await askText(deps, 'User', '--user NAME');
    const password = opts.passwordStdin ? await readSecretStdin(deps) : await askSecret(deps, `Password for ${user}`, '--password-stdin');
    let otp = opts.otp ?? deps.env.POSTERN_OTP;
    if (ping.secondFactor === 'otp' && !otp) otp = await askSecret(deps, 'Code from your authenticator app', '--otp CODE');

    const spinner = ora({ text: `Logging in to ${escapeControl(ping.clusterName)}`, stream: deps.io.stderr, isEnabled: decorated(deps, deps.io.stderr) }).start();
    let result;
    try {
      result = await login({
        home, web, proxyHost: proxy.host, webProxyAddr: formatHostPort(proxy.host, proxy.port), user, password, otp,
        ttlMs: opts.ttl, caPin, insecure, addToAgent: opts.addKeysToAgent, agentSocket: deps.env.SSH_AUTH_SOCK, clock: deps.clock,
        ...(opts.reuseKey ? { keyPair: opts.reuseKey } : {}),
      });
    } finally {
      spinner.stop();
    }
    const c = colours(deps);
    const left = result.validBefore.getTime() - deps.clock.now().getTime();
    out(deps, `${c.green('>')} Profile URL:  https://${formatHostPort(proxy.host, proxy.port)}`);
    out(deps, `  Logged in as: ${escapeControl(result.profile.user)}`);
    out(deps, `  Cluster:      ${escapeControl(result.profile.cluster)}`);
    out(deps, `  Logins:       ${result.profile.logins.map(escapeControl).join(', ')}`);
    out(deps, `  Valid until:  ${result.validBefore.toISOString()} [valid for ${formatDuration(left)}]`);
    out(deps, `  Key:          ${result.paths.privateKey}`);
    out(deps, `  Agent:        ${result.agent === 'added' ? 'key and certificate added' : result.agent === 'skipped' ? 'not added' : `not added: ${result.agent.error}`}`);
    if (result.ttlCapped) info(deps, `note: the cluster's maximum session TTL cut the certificate to ${formatDuration(left)}`);
    return { agent: result.agent, validBefore: result.validBefore };
  } finally {
    await web.close();
  }
}

/** Registers `postern login`. */
export function registerLogin(program: Command, deps: Deps, _state: RunState): void {
  program.command('login').description('log in to a cluster and get a short-lived SSH certificate')
    .option('--proxy <host[:port]>', 'the proxy\'s web address (default port 3080; default: the current profile, $POSTERN_PROXY)')
    .option('--user <name>', 'the user name (default: the current profile, $POSTERN_USER)')
    .addOption(new Option('--ttl <duration>', 'certificate lifetime, capped by the cluster (default 12h)').argParser(durationArg('--ttl')))
    .option('--otp <code>', 'the one-time code from the authenticator app ($POSTERN_OTP)')
    .option('--password-stdin', 'read the password from standard input')
    .option('--ca-pin <pin>', 'trust the proxy by the cluster CA pin that `postern serve` prints (sha256:…)')
    .option('--insecure', 'do not verify the proxy\'s TLS certificate (test clusters only)')
    .addOption(new Option('--add-keys-to-agent <mode>', 'add the key and certificate to ssh-agent').choices(['auto', 'yes', 'no']).default('auto'))
    .action(async (opts: LoginOptions) => { await runLogin(opts, deps); });
}

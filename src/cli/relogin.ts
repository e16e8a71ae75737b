/**
 * Logging in again on the terminal when the stored certificate has expired, for the
 * commands that then go on: `postern proxy ssh` (OpenSSH's ProxyCommand) and `postern ssh`.
 *
 * `postern ssh` reads the certificate after the login, so it simply goes on. A ProxyCommand
 * is harder: `ssh` read its CertificateFile before it started the ProxyCommand, so the new
 * certificate reaches it only through the ssh-agent, which ssh asks for its identities
 * after the ProxyCommand connected. So the login again keeps the key pair ssh already has,
 * and puts the key with its new certificate in the agent (IdentityAgent's, when ssh's config
 * names one). When ssh cannot take it (no agent, IdentityAgent none, IdentitiesOnly yes: read
 * from `ssh -G` with ssh's own arguments), the ProxyCommand says why and to run the command
 * again, and exits 255.
 */
import type { Deps } from './deps.ts';
import { info } from './output.ts';
import { loadLogin } from '../client/stored-login.ts';
import type { StoredLogin } from '../client/stored-login.ts';
import { loadProfile } from '../client/profile.ts';
import { readKeysAnyTime } from '../client/keystore.ts';
import { parentSshKeys } from '../client/parent-ssh.ts';
import { PosternError, ExitCode } from '../core/errors.ts';

/** Who goes on after the login: ssh (through the agent) or Postern itself. */
export type ReloginFor = 'proxy-command' | 'postern-ssh';

/**
 * The stored login; when its certificate expired and a terminal can be opened (and
 * POSTERN_NO_TTY_LOGIN is not 1), offers to log in again there and goes on with the new one.
 */
export async function loginOrRelogin(home: string, proxyHost: string | undefined, deps: Deps, reloginFor: ReloginFor): Promise<StoredLogin> {
  try {
    return loadLogin(home, proxyHost, deps.clock.now());
  } catch (err) {
    if (!(err instanceof PosternError) || err.code !== 'ERR_POSTERN_CERT_EXPIRED') throw err;
    const tty = deps.env.POSTERN_NO_TTY_LOGIN === '1' ? undefined : deps.openTerminal();
    if (!tty) throw err;
    try {
      let ttyDeps: Deps = { ...deps, io: tty.io };
      info(ttyDeps, `postern: ${err.message}`);
      // Loaded only now: prompts and the login code (HTTP client, spinner) would slow every start.
      const [{ askConfirm }, { runLogin }] = await Promise.all([import('./prompt.ts'), import('./commands/login.ts')]);
      if (!await askConfirm(ttyDeps, 'Log in again now?', true)) throw err;
      const { profile, paths } = loadProfile(home, proxyHost);
      const reuseKey = reloginFor === 'proxy-command' ? readKeysAnyTime(paths)?.keyPair : undefined;
      // The ssh that started us: does it take keys from an agent, and from which one?
      const parent = reloginFor === 'proxy-command' ? parentSshKeys(process.ppid, deps.env) : undefined;
      const agentPath = parent?.identityAgent;
      if (agentPath && agentPath !== 'none' && agentPath.startsWith('/')) ttyDeps = { ...ttyDeps, env: { ...ttyDeps.env, SSH_AUTH_SOCK: agentPath } };
      const done = await runLogin({ proxy: profile.webProxyAddr, user: profile.user, addKeysToAgent: 'auto', ...(reuseKey ? { reuseKey } : {}) }, ttyDeps);
      if (reloginFor === 'proxy-command') {
        const runAgain = (why: string, hint: string): PosternError => new PosternError('ERR_POSTERN_RUN_AGAIN',
          `logged in again, but this ssh read the expired certificate before it started postern proxy ssh, and ${why}: run the ssh command again`,
          { exitCode: ExitCode.connection, hint });
        if (parent?.identitiesOnly) {
          throw runAgain('its config has IdentitiesOnly yes for this host, so it does not take the new certificate from the ssh-agent',
            'To go on without running it again next time, drop IdentitiesOnly from this host\'s block in your ssh config (the block of  postern config  has none)');
        }
        if (done.agent !== 'added' || !reuseKey || agentPath === 'none') {
          throw runAgain('has no ssh-agent to take the new one from',
            'With an ssh-agent running (eval "$(ssh-agent)" before postern login), ssh goes on with the new certificate next time');
        }
        info(ttyDeps, parent
          ? 'postern: the new certificate is in your ssh-agent; ssh goes on with it'
          : 'postern: the new certificate is in your ssh-agent; ssh goes on with it, unless its config has IdentitiesOnly yes for this host (then run the ssh command again)');
      }
    } finally {
      tty.close();
    }
    return loadLogin(home, proxyHost, deps.clock.now());
  }
}

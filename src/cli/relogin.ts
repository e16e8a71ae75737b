/**
 * Logging in again on the terminal when the stored certificate has expired, for the
 * commands that then go on: `postern proxy ssh` (OpenSSH's ProxyCommand) and `postern ssh`.
 *
 * `postern ssh` reads the certificate after the login, so it simply goes on. A ProxyCommand
 * is harder: `ssh` read its CertificateFile before it started the ProxyCommand, so the new
 * certificate reaches it only through the ssh-agent, which ssh asks for its identities
 * after the ProxyCommand connected. So the login again keeps the key pair ssh already has,
 * and puts the key with its new certificate in the agent. Without an agent ssh cannot take
 * the new certificate: the ProxyCommand then says to run the command again and exits 255.
 */
import type { Deps } from './deps.ts';
import { info } from './output.ts';
import { loadLogin } from '../client/proxy-conn.ts';
import type { StoredLogin } from '../client/proxy-conn.ts';
import { loadProfile } from '../client/profile.ts';
import { readKeysAnyTime } from '../client/keystore.ts';
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
      const ttyDeps: Deps = { ...deps, io: tty.io };
      info(ttyDeps, `postern: ${err.message}`);
      // Loaded only now: prompts and the login code (HTTP client, spinner) would slow every start.
      const [{ askConfirm }, { runLogin }] = await Promise.all([import('./prompt.ts'), import('./commands/login.ts')]);
      if (!await askConfirm(ttyDeps, 'Log in again now?', true)) throw err;
      const { profile, paths } = loadProfile(home, proxyHost);
      const reuseKey = reloginFor === 'proxy-command' ? readKeysAnyTime(paths)?.keyPair : undefined;
      const done = await runLogin({ proxy: profile.webProxyAddr, user: profile.user, addKeysToAgent: 'auto', ...(reuseKey ? { reuseKey } : {}) }, ttyDeps);
      if (reloginFor === 'proxy-command') {
        if (done.agent !== 'added' || !reuseKey) {
          throw new PosternError('ERR_POSTERN_RUN_AGAIN', 'logged in again, but this ssh read the expired certificate before it started postern proxy ssh, and has no ssh-agent to take the new one from: run the ssh command again', {
            exitCode: ExitCode.connection,
            hint: 'With an ssh-agent running (eval "$(ssh-agent)" before postern login), ssh goes on with the new certificate next time',
          });
        }
        info(ttyDeps, 'postern: the new certificate is in your ssh-agent; ssh goes on with it. If ssh still says "Permission denied", its config has IdentitiesOnly yes for this host (it then ignores the agent\'s new certificate): run the ssh command again, or use the block of  postern config');
      }
    } finally {
      tty.close();
    }
    return loadLogin(home, proxyHost, deps.clock.now());
  }
}

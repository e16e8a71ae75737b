/**
 * `postern proxy ssh USER@HOST:PORT`: OpenSSH's ProxyCommand. It opens the TLS tunnel on
 * the proxy's web port (src/client/proxy-tunnel.ts), or else connects to the proxy's SSH
 * listener with the stored certificate as USER and asks for the subsystem
 * `proxy:HOST:PORT`, and pipes the node's SSH stream over stdin and stdout. Stdout carries
 * that stream and nothing else; every message goes to stderr; any failure exits 255, as
 * OpenSSH expects of a ProxyCommand.
 */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import type { RunState } from '../../run-state.ts';
import { tshHome } from '../../../client/paths.ts';
import { loginOrRelogin } from '../../relogin.ts';
import { nodeAccess, pipeToNode } from '../../../client/node-access.ts';
import { asConnectionFailure, UsageError } from '../../../core/errors.ts';
import { parseHostPort } from '../../../core/text.ts';
import { DEFAULT_WEB_PORT } from '../../../api/types.ts';
import { assertSsh2Patched } from '../../../ssh/ssh2-capabilities.ts';

/** Options of `postern proxy ssh`. */
export interface ProxySshOptions {
  proxy?: string;
}

/** Splits `USER@HOST:PORT` as OpenSSH's `%r@%h:%p` makes it (HOST may be an IPv6 literal, bare or in brackets). */
export function parseProxyTarget(text: string): { login: string; host: string; port: number } {
  const at = text.lastIndexOf('@');
  if (at <= 0) throw new UsageError(`invalid target "${text}": expected USER@HOST:PORT`, { hint: 'As a ProxyCommand:  postern proxy ssh %r@%h:%p' });
  const login = text.slice(0, at);
  const rest = text.slice(at + 1);
  const m = /^(.+):(\d{1,5})$/.exec(rest);
  const host = (m ? m[1] : rest).replace(/^\[(.*)\]$/, '$1');
  const port = m ? Number(m[2]) : 22;
  if (!host || port < 1 || port > 65535) throw new UsageError(`invalid target "${text}": expected USER@HOST:PORT`);
  return { login, host, port };
}

/** Connects and pipes; resolves when the node's stream ends. Every failure exits 255, as a ProxyCommand must. */
export async function runProxySsh(target: string, opts: ProxySshOptions, deps: Deps, _state: RunState): Promise<void> {
  assertSsh2Patched(); // the ssh2 patches are there (docs/ssh2-patches.md), before anything uses ssh2
  try {
    const { login, host, port } = parseProxyTarget(target);
    const home = tshHome(deps.env, deps.homeDir);
    const proxyHost = opts.proxy ? parseHostPort(opts.proxy, DEFAULT_WEB_PORT).host : undefined;
    const stored = await loginOrRelogin(home, proxyHost, deps, 'proxy-command');
    const access = nodeAccess(stored, login, deps.env, () => deps.clock.now());
    // Late messages from the proxy (the node went away) go to stderr: stdout is ssh's.
    await pipeToNode(access, host, port, deps.io, (text) => deps.io.stderr.write(text));
  } catch (err) {
    throw asConnectionFailure(err);
  }
}

/** Registers `postern proxy ssh`. */
export function registerProxySsh(proxy: Command, deps: Deps, state: RunState): void {
  proxy.command('ssh').description('connect stdin and stdout to a node\'s sshd through the proxy (an OpenSSH ProxyCommand)')
    .argument('<user@host:port>', 'the login, the node (name, NAME.<cluster>, label selector k=v, or host) and its port: %r@%h:%p')
    .option('--proxy <host[:port]>', 'the profile to use (default: the current one)')
    .addHelpText('after', `
In ~/.ssh/config (postern config writes this for you):
  Host *.example.com
      ProxyCommand postern proxy ssh --proxy proxy.example.com:3080 %r@%h:%p

The stream goes through a TLS tunnel on the proxy's web port when the proxy offers it (one
encryption layer less than the SSH listener), else through the proxy's SSH listener; the
SSH listener is always used when the cluster records sessions at the proxy. Set
POSTERN_PROXY_TRANSPORT=ssh (or tls) to choose.

Stdout carries only the SSH stream; messages go to stderr. Exits 255 when the connection
fails. When the certificate has expired and a terminal is available, it offers to log in
again there (POSTERN_NO_TTY_LOGIN=1 turns that off). ssh read the old certificate before it
started this command, so the login keeps the key pair and puts the new certificate in your
ssh-agent, where ssh finds it, and ssh goes on (with postern config's block, which lets ssh
use the agent's keys). Without an agent it says to run the ssh command again, and exits 255.`)
    .action((target: string, opts: ProxySshOptions) => runProxySsh(target, opts, deps, state));
}

/**
 * `postern proxy ssh USER@HOST:PORT`: OpenSSH's ProxyCommand. It opens the TLS tunnel on
 * the proxy's web port (src/client/proxy-tunnel.ts), or else connects to the proxy's SSH
 * listener with the stored certificate as USER and asks for the subsystem
 * `proxy:HOST:PORT`, and pipes the node's SSH stream over stdin and stdout. Stdout carries
 * that stream and nothing else; every message goes to stderr; any failure exits 255, as
 * OpenSSH expects of a ProxyCommand.
 */
import { openSync, closeSync } from 'node:fs';
import { ReadStream, WriteStream } from 'node:tty';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import type { Duplex } from 'node:stream';
import type { Command } from 'commander';
import type { Client } from 'ssh2';
import type { Deps, OutStream } from '../deps.ts';
import type { RunState } from '../program.ts';
import { tshHome } from '../../client/paths.ts';
import { loadProfile } from '../../client/profile.ts';
import { loadLogin, connectToProxy, openProxySubsystem } from '../../client/proxy-conn.ts';
import type { StoredLogin } from '../../client/proxy-conn.ts';
import { asConnectionFailure, ConnectionError, ExitCode, PosternError, UsageError } from '../../core/errors.ts';
import { escapeControl, parseHostPort } from '../../core/text.ts';
import { DEFAULT_WEB_PORT } from '../../api/types.ts';
import { info } from '../output.ts';
import { assertSsh2Patched } from '../../ssh/ssh2-capabilities.ts';

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

/** The terminal, when there is one, as streams a prompt can use (stdin and stdout belong to ssh). */
function openTerminal(): { deps: (d: Deps) => Deps; close: () => void } | undefined {
  let rfd: number | undefined;
  let wfd: number | undefined;
  try {
    rfd = openSync('/dev/tty', 'r');
    wfd = openSync('/dev/tty', 'w');
  } catch {
    if (rfd !== undefined) closeSync(rfd);
    return undefined;
  }
  const input = new ReadStream(rfd);
  const output = new WriteStream(wfd);
  // Each prompt pipes into its output and ends it when done, which would close the terminal
  // for the next prompt (process.stderr is exempt from that; our stream is not). So every
  // read of io.stdout / io.stderr gets its own view that writes through to the terminal.
  const view = (): OutStream => {
    const w = new Writable({ write: (chunk: Buffer, _enc, cb) => { output.write(chunk, cb); } });
    w.on('error', () => {});
    // Spinners (ora) move the cursor through the tty methods.
    return Object.assign(w, {
      isTTY: true, columns: output.columns || 80, rows: output.rows || 24, // a terminal of unknown size says 0
      cursorTo: output.cursorTo.bind(output), moveCursor: output.moveCursor.bind(output), clearLine: output.clearLine.bind(output),
      clearScreenDown: output.clearScreenDown.bind(output), getColorDepth: output.getColorDepth.bind(output),
      hasColors: output.hasColors.bind(output), getWindowSize: output.getWindowSize.bind(output),
    });
  };
  return {
    deps: (d) => ({ ...d, io: { stdin: input, get stdout() { return view(); }, get stderr() { return view(); } } }),
    close: () => { input.destroy(); output.destroy(); },
  };
}

/**
 * The stored login; when its certificate expired and a terminal can be opened, offers to
 * log in again there (the same flow as `postern login`) and continues with the new one.
 */
async function loginOrRelogin(home: string, proxyHost: string | undefined, deps: Deps): Promise<StoredLogin> {
  try {
    return loadLogin(home, proxyHost, deps.clock.now());
  } catch (err) {
    if (!(err instanceof PosternError) || err.code !== 'ERR_POSTERN_CERT_EXPIRED') throw err;
    const tty = deps.env.POSTERN_NO_TTY_LOGIN === '1' ? undefined : openTerminal();
    if (!tty) throw err;
    try {
      const ttyDeps = tty.deps(deps);
      info(ttyDeps, `postern: ${err.message}`);
      // Loaded only now: prompts and the login code (HTTP client, spinner) would slow every start.
      const [{ askConfirm }, { runLogin }] = await Promise.all([import('../prompt.ts'), import('./login.ts')]);
      if (!await askConfirm(ttyDeps, 'Log in again now?', true)) throw err;
      const { profile } = loadProfile(home, proxyHost);
      await runLogin({ proxy: profile.webProxyAddr, user: profile.user, addKeysToAgent: 'auto' }, ttyDeps);
    } finally {
      tty.close();
    }
    return loadLogin(home, proxyHost, deps.clock.now());
  }
}

/** Connects and pipes; resolves when the node's stream ends. */
export async function runProxySsh(target: string, opts: ProxySshOptions, deps: Deps, _state: RunState): Promise<void> {
  assertSsh2Patched(); // the ssh2 patches are there (docs/ssh2-patches.md), before anything uses ssh2
  let client: Client | undefined;
  try {
    const { login, host, port } = parseProxyTarget(target);
    const home = tshHome(deps.env, deps.homeDir);
    const proxyHost = opts.proxy ? parseHostPort(opts.proxy, DEFAULT_WEB_PORT).host : undefined;
    const stored = await loginOrRelogin(home, proxyHost, deps);
    // Checked here, before any dial: the proxy would refuse it, less clearly.
    if (!stored.certificate.principals.includes(login)) {
      const allowed = stored.certificate.principals.map(escapeControl).join(', ') || 'none';
      throw new PosternError('ERR_POSTERN_LOGIN_NOT_ALLOWED', `login "${escapeControl(login)}" is not in your certificate (it allows: ${allowed})`, {
        exitCode: ExitCode.connection,
        hint: `Connect as one of those, e.g.  ssh ${escapeControl(stored.certificate.principals[0] ?? 'LOGIN')}@${escapeControl(host)}; an admin can add logins, then log in again`,
      });
    }
    const transport = deps.env.POSTERN_PROXY_TRANSPORT || 'auto';
    if (transport !== 'ssh' && transport !== 'tls' && transport !== 'auto') {
      throw new UsageError(`POSTERN_PROXY_TRANSPORT must be auto, tls or ssh, not "${escapeControl(transport)}"`);
    }
    if (transport !== 'ssh') {
      // The TLS tunnel on the web port first: one encryption layer less (src/proxy/tunnel.ts).
      const { openTunnel } = await import('../../client/proxy-tunnel.ts');
      const tunnel = await openTunnel({ profile: stored.profile, keyPair: stored.keyPair, certificate: stored.certificate.raw, login, host, port });
      if (!('fallback' in tunnel)) {
        await splice(tunnel, deps);
        return;
      }
      if (transport === 'tls') throw new ConnectionError(`the TLS tunnel is not available: ${tunnel.reason}`, { hint: 'Unset POSTERN_PROXY_TRANSPORT to use the SSH listener' });
    }
    client = await connectToProxy({
      profile: stored.profile, keyPair: stored.keyPair, certificateText: stored.certificateText,
      knownHostsPath: stored.paths.knownHosts, username: login,
    });
    client.on('error', () => { /* reported through the channel's failure below */ });
    const ch = await openProxySubsystem(client, host, port);
    // Late messages from the proxy (the node went away) go to stderr, escaped.
    ch.stderr.on('data', (d: Buffer) => deps.io.stderr.write(escapeControl(d.toString('utf8'))));
    await splice(ch, deps);
  } catch (err) {
    throw asConnectionFailure(err);
  } finally {
    client?.end();
  }
}

/** Pipes the node's stream to stdout and stdin to it; resolves when the node's side ends. */
async function splice(stream: Duplex, deps: Deps): Promise<void> {
  const up = pipeline(deps.io.stdin, stream, { end: true });
  await pipeline(stream, deps.io.stdout, { end: false }).catch((err: Error & { code?: string }) => {
    // ssh closing our stdout is how a session normally ends.
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_PREMATURE_CLOSE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
  });
  // The node is done; ssh may still hold our stdin open.
  deps.io.stdin.destroy();
  await up.catch(() => {});
}

/** Registers `postern proxy ssh`. */
export function registerProxySsh(program: Command, deps: Deps, state: RunState): void {
  const proxy = program.command('proxy').description('commands for OpenSSH: the ProxyCommand');
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
again and then continues (POSTERN_NO_TTY_LOGIN=1 turns that off).`)
    .action((target: string, opts: ProxySshOptions) => runProxySsh(target, opts, deps, state));
}

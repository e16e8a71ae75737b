/**
 * Reaching a node from the engineer's machine: the one place that decides how, shared by
 * `postern ssh` (Postern's own SSH client) and `postern proxy ssh` (OpenSSH's ProxyCommand).
 *
 *   proxyTransport()   POSTERN_PROXY_TRANSPORT, checked: auto (default), tls or ssh
 *   nodeAccess()       the stored login and the login to use, checked against the certificate
 *                      before anything is dialled (the one refusal of src/api/refusals.ts)
 *   openNodeLink()     a byte stream to the node's sshd: the TLS tunnel on the proxy's web
 *                      port (src/client/proxy-tunnel.ts) when the transport allows it and the
 *                      proxy offers it, else the subsystem `proxy:HOST:PORT` on its SSH listener
 *   pipeToNode()       the ProxyCommand: stdin and stdout spliced to that stream
 *
 * What runs over such a link (a shell, a command, forwards, a selector's fan-out) is in
 * node-run.ts, apart, so the ProxyCommand loads none of it.
 *
 * Every failure to reach a node ends with exit status 255, as OpenSSH's ssh and a
 * ProxyCommand do (`asConnectionFailure`); a remote command's own status is passed on.
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import { corkedPipe, tuneHeapForRelay } from '../core/pipe.ts';
import type { Client } from 'ssh2';
import { connectToProxy, openProxySubsystem } from './proxy-conn.ts';
import type { StoredLogin } from './stored-login.ts';
import { loginNotAllowedError } from '../api/refusals.ts';
import { asConnectionFailure, ConnectionError, UsageError } from '../core/errors.ts';
import { escapeControl } from '../core/text.ts';

/** How the client reaches the proxy for a node: `auto` tries the TLS tunnel, then the SSH listener. */
export type ProxyTransport = 'auto' | 'tls' | 'ssh';

/** The transport POSTERN_PROXY_TRANSPORT asks for (auto when unset); anything else is a usage error. */
export function proxyTransport(env: Record<string, string | undefined>): ProxyTransport {
  const t = env.POSTERN_PROXY_TRANSPORT || 'auto';
  if (t !== 'auto' && t !== 'tls' && t !== 'ssh') {
    throw new UsageError(`POSTERN_PROXY_TRANSPORT must be auto, tls or ssh, not "${escapeControl(t)}"`, { hint: 'Unset it to let postern choose (the TLS tunnel when the proxy offers it)' });
  }
  return t;
}

/** A stored login, the login to use on nodes, and how to reach them: checked, ready to dial. */
export interface NodeAccess {
  stored: StoredLogin;
  login: string;
  transport: ProxyTransport;
  now: () => Date;
}

/**
 * Checks `login` against the certificate (before any dial: the proxy would refuse it,
 * less clearly) and the transport asked for; returns what dialling needs.
 */
export function nodeAccess(stored: StoredLogin, login: string, env: Record<string, string | undefined>, now: () => Date): NodeAccess {
  if (!stored.certificate.principals.includes(login)) throw loginNotAllowedError(login, stored.certificate.principals);
  return { stored, login, transport: proxyTransport(env), now };
}

/** The login `postern ssh` uses: -l, then USER@, then the local user if the certificate allows it, then the certificate's first. */
export function chooseLogin(plan: { user?: string }, flag: string | undefined, principals: string[], env: Record<string, string | undefined>): string {
  if (flag) return flag;
  if (plan.user) return plan.user;
  const local = env.USER ?? env.LOGNAME;
  if (local && principals.includes(local)) return local;
  return principals[0] ?? local ?? 'root';
}

/** A stream to the node's sshd through the proxy, and how to let go of it. */
export interface NodeLink {
  stream: Duplex;
  close(): void;
}

/** What `openNodeLink` may be given. */
export interface NodeLinkOptions {
  /** An SSH connection to the proxy to open the subsystem on (the selector fan-out shares one); no tunnel then. */
  via?: Client;
  /** Where the proxy's messages about the channel go, escaped; dropped without it (they are not the node's output). */
  onProxyMessage?: (text: string) => void;
}

/** Connects to the proxy's SSH listener as the access's login. */
export function proxyConnection(access: NodeAccess): Promise<Client> {
  const { profile, keyPair, certificateText, paths } = access.stored;
  return connectToProxy({ profile, keyPair, certificateText, knownHostsPath: paths.knownHosts, username: access.login });
}

/**
 * Opens a stream to the node's sshd: the TLS tunnel unless the transport is `ssh` (the
 * proxy answers "use the SSH listener" when it records sessions, and then `auto` falls
 * back; `tls` does not), else the subsystem on `opts.via` or on a new connection. Any
 * failure is a connection failure (exit 255).
 */
export async function openNodeLink(access: NodeAccess, target: string, port: number, opts: NodeLinkOptions = {}): Promise<NodeLink> {
  try {
    if (!opts.via && access.transport !== 'ssh') {
      // Loaded only when used: a run over the SSH listener never needs it.
      const { openTunnel } = await import('./proxy-tunnel.ts');
      const { profile, keyPair, certificate } = access.stored;
      const tunnel = await openTunnel({ profile, keyPair, certificate: certificate.raw, login: access.login, host: target, port });
      if (!('fallback' in tunnel)) return { stream: tunnel, close: () => tunnel.destroy() };
      if (access.transport === 'tls') throw new ConnectionError(`the TLS tunnel is not available: ${tunnel.reason}`, { hint: 'Unset POSTERN_PROXY_TRANSPORT to use the SSH listener' });
    }
    const via = opts.via ?? await proxyConnection(access);
    try {
      const stream = await openProxySubsystem(via, target, port);
      const onMessage = opts.onProxyMessage;
      if (onMessage) stream.stderr.on('data', (d: Buffer) => onMessage(escapeControl(d.toString('utf8'))));
      else stream.stderr.resume();
      return { stream, close: () => { if (!opts.via) via.end(); } };
    } catch (err) {
      if (!opts.via) via.end();
      throw err;
    }
  } catch (err) {
    throw asConnectionFailure(err);
  }
}

/** The streams a ProxyCommand splices: ssh's pipes. */
export interface PipeIo {
  stdin: Readable;
  stdout: Writable;
}

/**
 * The ProxyCommand: opens the link and pipes the node's stream to stdout and stdin to it;
 * resolves when the node's side ends. Messages go to `onProxyMessage`, never to stdout.
 */
export async function pipeToNode(access: NodeAccess, host: string, port: number, io: PipeIo, onProxyMessage: (text: string) => void): Promise<void> {
  const link = await openNodeLink(access, host, port, { onProxyMessage });
  try {
    await splice(link.stream, io);
  } catch (err) {
    throw asConnectionFailure(err);
  } finally {
    link.close();
  }
}

/** Pipes the node's stream to stdout and stdin to it; resolves when the node's side ends. */
async function splice(stream: Duplex, io: PipeIo): Promise<void> {
  // The ProxyCommand relays every byte of the session, as the proxy does: the same corked
  // pipe both ways (one writev per turn, pooled reads past a bulk transfer) and the same
  // collector tuning.
  tuneHeapForRelay();
  // ssh closing our stdout is how a session normally ends.
  const benign = (err: Error & { code?: string }): boolean => err.code === 'EPIPE' || err.code === 'ERR_STREAM_PREMATURE_CLOSE' || err.code === 'ERR_STREAM_DESTROYED';
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error): void => { if (benign(err)) resolve(); else reject(err); };
    stream.once('end', () => resolve());
    stream.once('close', () => resolve());
    stream.once('error', fail);
    io.stdout.once('error', fail);
    io.stdout.once('close', () => resolve());
    // A failed read of ssh's stdin ends the session as its end would: the node sees EOF.
    io.stdin.once('error', () => { stream.end(); });
    corkedPipe(io.stdin, stream);
    corkedPipe(stream, io.stdout, { end: false });
    io.stdin.resume();
    stream.resume();
  });
  // The node is done; ssh may still hold our stdin open.
  io.stdin.destroy();
}


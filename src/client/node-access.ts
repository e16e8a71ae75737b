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
 *   runOnNode()        a shell or command (with -L/-R forwards) end to end with one node
 *   runOnSelector()    a command on every node a label selector matches, lines prefixed
 *
 * Every failure to reach a node ends with exit status 255, as OpenSSH's ssh and a
 * ProxyCommand do (`asConnectionFailure`); a remote command's own status is passed on.
 */
import type { Duplex, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Client } from 'ssh2';
import { connectToProxy, openProxySubsystem } from './proxy-conn.ts';
import type { StoredLogin } from './proxy-conn.ts';
import { acceptedHostNames, connectToNode, hostCaKeysFromKnownHosts } from './ssh-client.ts';
import { exitCodeOf, nodePrefix, runPrefixed, runSession } from './ssh-session.ts';
import type { SessionExit, SessionIo } from './ssh-session.ts';
import { RemoteForwards, startLocalForward } from './port-forward.ts';
import type { ActiveForward, ForwardSpec } from './port-forward.ts';
import type { WebClient, WebClientOptions, NodeListing } from './web-client.ts';
import { requestSigner } from './request-signing.ts';
import { loginNotAllowedError } from '../api/refusals.ts';
import { DEFAULT_WEB_PORT } from '../api/types.ts';
import type { Labels } from '../api/labels.ts';
import { asConnectionFailure, ConnectionError, ExitCode, NotFoundError, UsageError, toPosternError } from '../core/errors.ts';
import { escapeControl, formatHostPort, parseHostPort } from '../core/text.ts';

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
  /** The host CA keys of the profile's known_hosts (read once, when first needed). */
  hostCaKeys(): Buffer[];
}

/**
 * Checks `login` against the certificate (before any dial: the proxy would refuse it,
 * less clearly) and the transport asked for; returns what dialling needs.
 */
export function nodeAccess(stored: StoredLogin, login: string, env: Record<string, string | undefined>, now: () => Date): NodeAccess {
  if (!stored.certificate.principals.includes(login)) throw loginNotAllowedError(login, stored.certificate.principals);
  let caKeys: Buffer[] | undefined;
  const hostCaKeys = (): Buffer[] => (caKeys ??= hostCaKeysFromKnownHosts(stored.paths.knownHosts));
  return { stored, login, transport: proxyTransport(env), now, hostCaKeys };
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
  stdin: Duplex | NodeJS.ReadableStream & { destroy(): void };
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
  const up = pipeline(io.stdin, stream, { end: true });
  await pipeline(stream, io.stdout, { end: false }).catch((err: Error & { code?: string }) => {
    // ssh closing our stdout is how a session normally ends.
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_PREMATURE_CLOSE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
  });
  // The node is done; ssh may still hold our stdin open.
  io.stdin.destroy();
  await up.catch(() => {});
}

/** What running on nodes needs from outside: streams, the user's messages, signals, the web API. */
export interface NodeRunDeps {
  io: SessionIo;
  /** A message for the user (stderr), not the node's output. */
  notice(message: string): void;
  /** Calls `handler` when the user asks to stop (SIGINT, SIGTERM, SIGHUP) until the returned function is called. */
  onStop(handler: (signal: NodeJS.Signals) => void): () => void;
  /** A client of the proxy's web API (for the nodes a selector matches). */
  webClient(opts: WebClientOptions): Promise<WebClient>;
  /** $TERM, for a PTY. */
  term?: string;
  /** $SSH_AUTH_SOCK when -A asks to forward the agent. */
  agentSocket?: string;
}

/** What to run on one node. */
export interface NodeRun {
  target: string;
  port: number;
  command?: string;
  locals: ForwardSpec[];
  remotes: ForwardSpec[];
  /** -N: forwards only, until the connection ends or the user stops it. */
  forwardOnly: boolean;
  pty: 'auto' | 'yes' | 'no';
}

/** Runs SSH to the node over a link, the node's host certificate checked against the names it may have. */
function connectOver(link: NodeLink, access: NodeAccess, target: string, deps: NodeRunDeps): Promise<Client> {
  return connectToNode({
    stream: link.stream,
    label: target,
    login: access.login,
    keyPair: access.stored.keyPair,
    certificateText: access.stored.certificateText,
    trust: { hostCaKeys: access.hostCaKeys(), names: acceptedHostNames(target, access.stored.profile.cluster), now: access.now() },
    ...(deps.agentSocket ? { agentSocket: deps.agentSocket } : {}),
  });
}

/** Runs a shell or a command on one node, with its forwards; resolves with the exit code. */
export async function runOnNode(access: NodeAccess, run: NodeRun, deps: NodeRunDeps): Promise<number> {
  const link = await openNodeLink(access, run.target, run.port);
  let node: Client | undefined;
  const forwards: ActiveForward[] = [];
  let remote: RemoteForwards | undefined;
  let stopped: NodeJS.Signals | undefined;
  const stopListening = deps.onStop((signal) => {
    stopped = signal;
    node?.end();
    link.close();
  });
  try {
    node = await connectOver(link, access, run.target, deps);
    const nodeClosed = new Promise<void>((resolve) => node!.once('close', () => resolve()));
    const log = (message: string): void => deps.notice(`warning: ${message}`);
    for (const spec of run.locals) {
      const f = await startLocalForward(node, spec, log);
      forwards.push(f);
      if (spec.bindPort === 0) deps.notice(`Allocated port ${f.port} for local forward to ${formatHostPort(spec.host, spec.hostPort)}`);
    }
    if (run.remotes.length) {
      remote = new RemoteForwards(node, log);
      for (const spec of run.remotes) {
        const f = await remote.add(spec);
        forwards.push(f);
        if (spec.bindPort === 0) deps.notice(`Allocated port ${f.port} for remote forward to ${formatHostPort(spec.host, spec.hostPort)}`);
      }
    }
    if (run.forwardOnly) {
      await nodeClosed;
      // Ended by a signal (Ctrl-C) or by the connection going away: OpenSSH exits 255 for both.
      return ExitCode.connection;
    }
    const stdinTty = Boolean(deps.io.stdin.isTTY);
    const wantPty = run.pty === 'yes' || (run.pty === 'auto' && run.command === undefined && stdinTty);
    if (run.pty === 'auto' && run.command === undefined && !stdinTty) {
      deps.notice('Pseudo-terminal will not be allocated because stdin is not a terminal.');
    }
    const exit: SessionExit = await runSession(node, {
      ...(run.command !== undefined ? { command: run.command } : {}),
      ...(wantPty ? { pty: { term: deps.term || 'xterm' } } : {}),
      io: deps.io,
    });
    if (wantPty) deps.notice(`Connection to ${escapeControl(run.target)} closed.`);
    if (stopped) return ExitCode.connection;
    return exitCodeOf(exit);
  } finally {
    stopListening();
    remote?.closeAll();
    await Promise.all(forwards.map((f) => f.close().catch(() => undefined)));
    node?.end();
    link.close();
  }
}

/** How many nodes of a selector run at once. */
const SELECTOR_PARALLEL = 16;

/** The nodes a selector matches that the user may reach, by name; none is NotFoundError. */
async function selectedNodes(access: NodeAccess, selector: Labels, text: string, deps: NodeRunDeps): Promise<NodeListing[]> {
  const { profile, keyPair, certificate } = access.stored;
  const { host, port } = parseHostPort(profile.webProxyAddr, DEFAULT_WEB_PORT);
  const web = await deps.webClient({ host, port, ...(profile.caPin ? { caPin: profile.caPin } : {}), ...(profile.insecure ? { insecure: true } : {}) });
  let nodes: NodeListing[];
  try {
    nodes = await web.listNodes({ labels: selector }, requestSigner(keyPair, certificate.raw, access.now));
  } finally {
    await web.close();
  }
  if (nodes.length === 0) {
    throw new NotFoundError(`no node you may reach matches ${escapeControl(text)}`, { hint: 'See the nodes and their labels with:  postern ls' });
  }
  return nodes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Runs `command` on every node `selector` matches (`text` as the user typed it), a few at
 * a time over one SSH connection to the proxy, each line prefixed `[node] `. Resolves with
 * the first non-zero status in node order (a node that cannot be reached is 255), else 0.
 */
export async function runOnSelector(access: NodeAccess, selector: Labels, text: string, port: number, command: string, deps: NodeRunDeps): Promise<number> {
  const nodes = await selectedNodes(access, selector, text, deps);
  const proxy = await proxyConnection(access);
  const stopListening = deps.onStop(() => proxy.end());
  const statuses: number[] = new Array(nodes.length).fill(ExitCode.connection);
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < nodes.length) {
        const i = next++;
        statuses[i] = await runOneOf(proxy, access, nodes[i].name, port, command, deps);
      }
    };
    await Promise.all(Array.from({ length: Math.min(SELECTOR_PARALLEL, nodes.length) }, worker));
  } finally {
    stopListening();
    proxy.end();
  }
  return statuses.find((s) => s !== 0) ?? 0;
}

/** Runs the selector's command on one node; a failure there is reported with its prefix and is status 255. */
async function runOneOf(proxy: Client, access: NodeAccess, name: string, port: number, command: string, deps: NodeRunDeps): Promise<number> {
  let node: Client | undefined;
  try {
    node = await connectOver(await openNodeLink(access, name, port, { via: proxy }), access, name, deps);
    return exitCodeOf(await runPrefixed(node, command, name, deps.io));
  } catch (err) {
    const e = toPosternError(err);
    deps.io.stderr.write(`${nodePrefix(name)}error: ${escapeControl(e.message)}\n`);
    return ExitCode.connection;
  } finally {
    node?.end();
  }
}

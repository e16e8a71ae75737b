/**
 * Running on nodes over the links of node-access.ts, for `postern ssh`: a shell or a
 * command end to end with one node (with -L/-R forwards and -N), or a command on every
 * node a label selector matches, a few at a time, each output line prefixed `[node] `.
 * The node's host certificate is checked against the names it may have (ssh-client.ts).
 * Exit status as OpenSSH's: the remote command's, 255 when the connection fails.
 */
import type { Client } from 'ssh2';
import { openNodeLink, proxyConnection } from './node-access.ts';
import type { NodeAccess, NodeLink } from './node-access.ts';
import { acceptedHostNames, connectToNode, hostCaKeysFromKnownHosts } from './ssh-client.ts';
import { exitCodeOf, nodePrefix, runPrefixed, runSession } from './ssh-session.ts';
import type { SessionExit, SessionIo } from './ssh-session.ts';
import { DEFAULT_ESCAPE_CHAR } from './escapes.ts';
import type { EscapeChar } from './escapes.ts';
import { RemoteForwards, startLocalForward } from './port-forward.ts';
import type { ActiveForward, ForwardSpec } from './port-forward.ts';
import type { WebClient, WebClientOptions, NodeListing } from './web-client.ts';
import { requestSigner } from './request-signing.ts';
import { DEFAULT_WEB_PORT } from '../api/types.ts';
import type { Labels } from '../api/labels.ts';
import { ExitCode, NotFoundError, toPosternError } from '../core/errors.ts';
import { escapeControl, formatHostPort, parseHostPort } from '../core/text.ts';

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
  /** The escape character of a PTY session (escapes.ts; null for none, absent for `~`). */
  escapeChar?: EscapeChar;
}

const caKeysRead = new WeakMap<NodeAccess, Buffer[]>();

/** The host CA keys of the profile's known_hosts, read once per access. */
function hostCaKeys(access: NodeAccess): Buffer[] {
  let keys = caKeysRead.get(access);
  if (!keys) {
    keys = hostCaKeysFromKnownHosts(access.stored.paths.knownHosts);
    caKeysRead.set(access, keys);
  }
  return keys;
}

/** Runs SSH to the node over a link, the node's host certificate checked against the names it may have. */
function connectOver(link: NodeLink, access: NodeAccess, target: string, deps: NodeRunDeps): Promise<Client> {
  return connectToNode({
    stream: link.stream,
    label: target,
    login: access.login,
    keyPair: access.stored.keyPair,
    certificateText: access.stored.certificateText,
    trust: { hostCaKeys: hostCaKeys(access), names: acceptedHostNames(target, access.stored.profile.cluster), now: access.now() },
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
      escapeChar: run.escapeChar === undefined ? DEFAULT_ESCAPE_CHAR : run.escapeChar,
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
  // One SSH connection to the proxy carries every node's channel; a forced `tls` transport
  // never uses the SSH listener, so each node then gets a tunnel of its own.
  const proxy = access.transport === 'tls' ? undefined : await proxyConnection(access);
  const links = new Set<NodeLink>();
  const stopListening = deps.onStop(() => {
    proxy?.end();
    for (const link of links) link.close();
  });
  const statuses = new Array<number>(nodes.length).fill(ExitCode.connection);
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < nodes.length) {
        const i = next++;
        statuses[i] = await runOneOf(proxy, links, access, nodes[i].name, port, command, deps);
      }
    };
    await Promise.all(Array.from({ length: Math.min(SELECTOR_PARALLEL, nodes.length) }, worker));
  } finally {
    stopListening();
    proxy?.end();
  }
  return statuses.find((s) => s !== 0) ?? 0;
}

/** Runs the selector's command on one node; a failure there is reported with its prefix and is status 255. */
async function runOneOf(proxy: Client | undefined, links: Set<NodeLink>, access: NodeAccess, name: string, port: number, command: string, deps: NodeRunDeps): Promise<number> {
  let node: Client | undefined;
  let link: NodeLink | undefined;
  try {
    link = await openNodeLink(access, name, port, proxy ? { via: proxy } : {});
    links.add(link);
    node = await connectOver(link, access, name, deps);
    return exitCodeOf(await runPrefixed(node, command, name, deps.io));
  } catch (err) {
    const e = toPosternError(err);
    deps.io.stderr.write(`${nodePrefix(name)}error: ${escapeControl(e.message)}\n`);
    return ExitCode.connection;
  } finally {
    node?.end();
    if (link) {
      link.close();
      links.delete(link);
    }
  }
}

/**
 * `postern ssh`: Postern's own SSH client, end to end with the node through the proxy.
 *
 *   postern ssh [-l LOGIN] [-p PORT] [-A] [-L spec]… [-R spec]… [-N] [-t|-T] [USER@]TARGET [COMMAND…]
 *
 * TARGET is a node name, NAME.<cluster>, a host the cluster allows, or a label selector
 * (`env=prod`): then COMMAND runs on every matching node the user may reach, each line of
 * output prefixed with `[node] `. Exit status as OpenSSH's: the remote command's, or 255
 * when the connection fails (for a selector, the first non-zero status in node order).
 */
import type { Command } from 'commander';
import type { Duplex } from 'node:stream';
import { Option } from 'commander';
import type { Client } from 'ssh2';
import type { Deps } from '../deps.ts';
import type { RunState } from '../program.ts';
import { tshHome } from '../../client/paths.ts';
import { loadLogin, connectToProxy, openProxySubsystem } from '../../client/proxy-conn.ts';
import type { StoredLogin } from '../../client/proxy-conn.ts';
import {
  acceptedHostNames, connectToNode, hostCaKeysFromKnownHosts, isLabelSelector, parseDestination, parseLabelSelector,
} from '../../client/ssh-client.ts';
import { exitCodeOf, nodePrefix, runPrefixed, runSession } from '../../client/ssh-session.ts';
import type { SessionExit } from '../../client/ssh-session.ts';
import { RemoteForwards, parseForwardSpec, startLocalForward } from '../../client/port-forward.ts';
import type { ActiveForward, ForwardSpec } from '../../client/port-forward.ts';
import { WebClient } from '../../client/web-client.ts';
import type { NodeListing } from '../../client/web-client.ts';
import { requestSigner } from '../../client/request-signing.ts';
import { DEFAULT_WEB_PORT } from '../../api/types.ts';
import { asConnectionFailure, ExitCode, NotFoundError, PosternError, UsageError, toPosternError } from '../../core/errors.ts';
import { escapeControl, formatHostPort, parseHostPort } from '../../core/text.ts';
import { info } from '../output.ts';
import { assertSsh2Patched } from '../../ssh/ssh2-capabilities.ts';

/** Options of `postern ssh`, as commander gives them. */
export interface SshOptions {
  login?: string;
  port?: number;
  forwardAgent?: boolean;
  localForward?: string[];
  remoteForward?: string[];
  /** -N: no command, forwards only. */
  N?: boolean;
  /** -t: force a PTY. */
  t?: boolean;
  /** -T: no PTY. */
  T?: boolean;
  proxy?: string;
}

/** Everything `runSsh` needs: the options, the destination and the command words. */
export interface SshRequest extends SshOptions {
  destination: string;
  command: string[];
}

/** Port 22 asks the proxy for the node's registered port, as `%p` does in a ProxyCommand. */
const DEFAULT_NODE_PORT = 22;
/** How many nodes of a selector run at once. */
const SELECTOR_PARALLEL = 16;

/** A validated request: what to run where, checked before anything is read or dialled. */
interface Plan {
  user?: string;
  target: string;
  selector?: Record<string, string>;
  command?: string;
  port: number;
  locals: ForwardSpec[];
  remotes: ForwardSpec[];
  forwardOnly: boolean;
  pty: 'auto' | 'yes' | 'no';
}

/** Checks the arguments as OpenSSH would; usage errors exit 2. */
export function planSsh(req: SshRequest): Plan {
  const dest = parseDestination(req.destination);
  if (req.t && req.T) throw new UsageError('-t and -T cannot be used together', { hint: '-t forces a terminal, -T disables it' });
  const locals = (req.localForward ?? []).map((s) => parseForwardSpec(s, 'L'));
  const remotes = (req.remoteForward ?? []).map((s) => parseForwardSpec(s, 'R'));
  // Joined with spaces, as ssh does: the remote shell splits it again.
  const command = req.command.length > 0 ? req.command.join(' ') : undefined;
  if (req.N && command !== undefined) throw new UsageError('-N runs no command, but a command was given', { hint: 'Drop -N to run the command, or the command to only forward ports' });
  const plan: Plan = {
    ...(dest.user !== undefined ? { user: dest.user } : {}),
    target: dest.target,
    ...(command !== undefined ? { command } : {}),
    port: req.port ?? DEFAULT_NODE_PORT,
    locals,
    remotes,
    forwardOnly: Boolean(req.N),
    pty: req.t ? 'yes' : req.T ? 'no' : 'auto',
  };
  if (isLabelSelector(dest.target)) {
    plan.selector = parseLabelSelector(dest.target);
    if (command === undefined) {
      throw new UsageError(`a label selector (${escapeControl(dest.target)}) needs a command to run on every matching node`, {
        hint: `postern ssh ${escapeControl(req.destination)} COMMAND, or name one node:  postern ssh NODE`,
      });
    }
    if (locals.length || remotes.length || req.N || req.t) {
      throw new UsageError('-L, -R, -N and -t need a single node, not a label selector');
    }
  }
  return plan;
}

/** The login to use: -l, then USER@, then the local user if the certificate allows it, then the certificate's first. */
export function chooseLogin(plan: { user?: string }, flag: string | undefined, principals: string[], env: Record<string, string | undefined>): string {
  if (flag) return flag;
  if (plan.user) return plan.user;
  const local = env.USER ?? env.LOGNAME;
  if (local && principals.includes(local)) return local;
  return principals[0] ?? local ?? 'root';
}

/** Runs `postern ssh`; returns the exit code. */
export async function runSsh(req: SshRequest, deps: Deps): Promise<number> {
  assertSsh2Patched(); // the ssh2 patches are there (docs/ssh2-patches.md), before anything uses ssh2
  const plan = planSsh(req);
  const home = tshHome(deps.env, deps.homeDir);
  const stored = loadLogin(home, req.proxy, deps.clock.now());
  const login = chooseLogin(plan, req.login, stored.certificate.principals, deps.env);
  if (!stored.certificate.principals.includes(login)) {
    throw new PosternError('ERR_POSTERN_LOGIN_NOT_ALLOWED', `login "${escapeControl(login)}" is not in your certificate`, {
      exitCode: ExitCode.connection,
      hint: `Your logins: ${stored.certificate.principals.map(escapeControl).join(', ') || 'none'}; pick one with -l LOGIN or LOGIN@${escapeControl(plan.target)}`,
    });
  }
  let agentSocket: string | undefined;
  if (req.forwardAgent) {
    agentSocket = deps.env.SSH_AUTH_SOCK || undefined;
    if (!agentSocket) info(deps, 'warning: -A: no ssh-agent to forward (SSH_AUTH_SOCK is not set)');
  }
  const ctx: RunContext = { deps, stored, login, agentSocket, hostCaKeys: hostCaKeysFromKnownHosts(stored.paths.knownHosts) };
  return plan.selector ? runOnSelector(plan, plan.selector, ctx) : runOnNode(plan, ctx);
}

interface RunContext {
  deps: Deps;
  stored: StoredLogin;
  login: string;
  agentSocket: string | undefined;
  hostCaKeys: Buffer[];
}

function proxyConnection(ctx: RunContext): Promise<Client> {
  const { profile, keyPair, certificateText, paths } = ctx.stored;
  return connectToProxy({ profile, keyPair, certificateText, knownHostsPath: paths.knownHosts, username: ctx.login });
}

/** A stream to the node's sshd through the proxy, and how to let go of it. */
interface NodeLink {
  stream: Duplex;
  close(): void;
}

/**
 * The TLS tunnel on the web port when the proxy offers it (one encryption layer less,
 * src/client/proxy-tunnel.ts), else the subsystem `proxy:TARGET:PORT` on `proxy` (opened
 * first when not given). The proxy answers "use the SSH listener" when it records sessions.
 */
async function nodeLink(ctx: RunContext, target: string, port: number, proxy?: Client): Promise<NodeLink> {
  if (!proxy && (ctx.deps.env.POSTERN_PROXY_TRANSPORT || 'auto') !== 'ssh') {
    const { openTunnel } = await import('../../client/proxy-tunnel.ts');
    const { profile, keyPair, certificate } = ctx.stored;
    const tunnel = await openTunnel({ profile, keyPair, certificate: certificate.raw, login: ctx.login, host: target, port }).catch((err: unknown) => { throw asConnectionFailure(err); });
    if (!('fallback' in tunnel)) return { stream: tunnel, close: () => tunnel.destroy() };
  }
  const via = proxy ?? await proxyConnection(ctx);
  const stream = await openProxySubsystem(via, target, port);
  // The proxy's messages about this channel, if any, are not the node's output.
  stream.stderr.resume();
  return { stream, close: () => { if (!proxy) via.end(); } };
}

/** Runs SSH to the node over a link. */
function nodeConnection(link: NodeLink, ctx: RunContext, target: string, names: string[]): Promise<Client> {
  return connectToNode({
    stream: link.stream,
    label: target,
    login: ctx.login,
    keyPair: ctx.stored.keyPair,
    certificateText: ctx.stored.certificateText,
    trust: { hostCaKeys: ctx.hostCaKeys, names, now: ctx.deps.clock.now() },
    ...(ctx.agentSocket ? { agentSocket: ctx.agentSocket } : {}),
  });
}

/** Calls `onStop` on SIGINT, SIGTERM or SIGHUP until the returned function is called. */
function onStopSignals(onStop: (signal: NodeJS.Signals) => void): () => void {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onStop);
  return () => { for (const s of signals) process.off(s, onStop); };
}

async function runOnNode(plan: Plan, ctx: RunContext): Promise<number> {
  const { deps } = ctx;
  const link = await nodeLink(ctx, plan.target, plan.port);
  let node: Client | undefined;
  const forwards: ActiveForward[] = [];
  let remote: RemoteForwards | undefined;
  let stopped: NodeJS.Signals | undefined;
  const stopSignals = onStopSignals((signal) => {
    stopped = signal;
    node?.end();
    link.close();
  });
  try {
    node = await nodeConnection(link, ctx, plan.target, acceptedHostNames(plan.target, ctx.stored.profile.cluster));
    const nodeClosed = new Promise<void>((resolve) => node!.once('close', () => resolve()));
    const log = (message: string): void => info(deps, `warning: ${message}`);
    for (const spec of plan.locals) {
      const f = await startLocalForward(node, spec, log);
      forwards.push(f);
      if (spec.bindPort === 0) info(deps, `Allocated port ${f.port} for local forward to ${formatHostPort(spec.host, spec.hostPort)}`);
    }
    if (plan.remotes.length) {
      remote = new RemoteForwards(node, log);
      for (const spec of plan.remotes) {
        const f = await remote.add(spec);
        forwards.push(f);
        if (spec.bindPort === 0) info(deps, `Allocated port ${f.port} for remote forward to ${formatHostPort(spec.host, spec.hostPort)}`);
      }
    }
    if (plan.forwardOnly) {
      await nodeClosed;
      // Ended by a signal (Ctrl-C) or by the connection going away: OpenSSH exits 255 for both.
      return ExitCode.connection;
    }
    const stdinTty = Boolean(deps.io.stdin.isTTY);
    const wantPty = plan.pty === 'yes' || (plan.pty === 'auto' && plan.command === undefined && stdinTty);
    if (plan.pty === 'auto' && plan.command === undefined && !stdinTty) {
      info(deps, 'Pseudo-terminal will not be allocated because stdin is not a terminal.');
    }
    const exit: SessionExit = await runSession(node, {
      ...(plan.command !== undefined ? { command: plan.command } : {}),
      ...(wantPty ? { pty: { term: deps.env.TERM || 'xterm' } } : {}),
      io: deps.io,
    });
    if (wantPty) info(deps, `Connection to ${escapeControl(plan.target)} closed.`);
    if (stopped) return ExitCode.connection;
    return exitCodeOf(exit);
  } finally {
    stopSignals();
    remote?.closeAll();
    await Promise.all(forwards.map((f) => f.close().catch(() => undefined)));
    node?.end();
    link.close();
  }
}

/** The proxy's web API for the stored profile, as `login` reached it. */
function webClientFor(stored: StoredLogin): WebClient {
  const { host, port } = parseHostPort(stored.profile.webProxyAddr, DEFAULT_WEB_PORT);
  return new WebClient({ host, port, ...(stored.profile.caPin ? { caPin: stored.profile.caPin } : {}), ...(stored.profile.insecure ? { insecure: true } : {}) });
}

async function runOnSelector(plan: Plan, selector: Record<string, string>, ctx: RunContext): Promise<number> {
  const { deps, stored } = ctx;
  const web = webClientFor(stored);
  let nodes: NodeListing[];
  try {
    nodes = await web.listNodes({ labels: selector }, requestSigner(stored.keyPair, stored.certificate.raw, () => deps.clock.now()));
  } finally {
    await web.close();
  }
  if (nodes.length === 0) {
    throw new NotFoundError(`no node you may reach matches ${escapeControl(plan.target)}`, { hint: 'See the nodes and their labels with:  postern ls' });
  }
  nodes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const proxy = await proxyConnection(ctx);
  const stopSignals = onStopSignals(() => proxy.end());
  const statuses: number[] = new Array(nodes.length).fill(ExitCode.connection);
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < nodes.length) {
        const i = next++;
        statuses[i] = await runOneOf(proxy, plan, ctx, nodes[i].name);
      }
    };
    await Promise.all(Array.from({ length: Math.min(SELECTOR_PARALLEL, nodes.length) }, worker));
  } finally {
    stopSignals();
    proxy.end();
  }
  return statuses.find((s) => s !== 0) ?? 0;
}

/** Runs the selector's command on one node; a failure there is reported with its prefix and is status 255. */
async function runOneOf(proxy: Client, plan: Plan, ctx: RunContext, name: string): Promise<number> {
  let node: Client | undefined;
  try {
    node = await nodeConnection(await nodeLink(ctx, name, plan.port, proxy), ctx, name, acceptedHostNames(name, ctx.stored.profile.cluster));
    return exitCodeOf(await runPrefixed(node, plan.command!, name, ctx.deps.io));
  } catch (err) {
    const e = toPosternError(err);
    ctx.deps.io.stderr.write(`${nodePrefix(name)}error: ${escapeControl(e.message)}\n`);
    return ExitCode.connection;
  } finally {
    node?.end();
  }
}

/**
 * Puts a `--` right after the destination, so the command's words are never read as
 * options of `postern ssh` (`postern ssh web1 ls -l`), as OpenSSH stops at the command.
 * `takesValue` says whether a flag takes a value (undefined for an unknown flag).
 */
export function passThroughAfterDestination(args: string[], takesValue: (flag: string) => boolean | undefined): string[] {
  let i = 0;
  while (i < args.length) {
    const a = args[i];
    if (a === '--') return args; // everything after is already operands
    if (a.length > 1 && a.startsWith('-')) {
      if (a.startsWith('--')) {
        i += !a.includes('=') && takesValue(a) ? 2 : 1;
        continue;
      }
      // A group of short flags (-At); a flag with a value takes the rest, or the next word.
      let next = 1;
      for (let j = 1; j < a.length; j++) {
        if (takesValue(`-${a[j]}`)) {
          if (j === a.length - 1) next = 2;
          break;
        }
      }
      i += next;
      continue;
    }
    if (args[i + 1] === '--') return args;
    return [...args.slice(0, i + 1), '--', ...args.slice(i + 1)];
  }
  return args;
}

function portArg(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) throw new UsageError(`invalid -p "${escapeControl(value)}": a port is a number from 1 to 65535`);
  return Number(value);
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Registers `postern ssh`. */
export function registerSsh(program: Command, deps: Deps, state: RunState): void {
  const cmd = program.command('ssh').description('run a shell or a command on a node through the proxy, end to end (like ssh)')
    .usage('[options] [USER@]TARGET [COMMAND...]')
    .argument('<destination>', '[USER@]TARGET: a node name, NAME.<cluster>, a label selector k=v[,k=v] (runs on every match), or a host')
    .argument('[command...]', 'the command to run; without one, an interactive shell')
    .option('-l, --login <login>', 'the login on the node (default: USER@, else your local user if allowed, else your first login)')
    .addOption(new Option('-p, --port <port>', 'the node\'s SSH port (default: the port it was registered with)').argParser(portArg))
    .option('-A, --forward-agent', 'forward the local ssh-agent ($SSH_AUTH_SOCK) to the node')
    .option('-L, --local-forward <spec>', 'forward [bind_address:]port here to host:hostport from the node (repeatable)', collect)
    .option('-R, --remote-forward <spec>', 'forward [bind_address:]port on the node to host:hostport from here (repeatable)', collect)
    .option('-N', 'run no command: only forward ports, until Ctrl-C')
    .option('-t', 'force a terminal (PTY), even for a command')
    .option('-T', 'never allocate a terminal')
    .option('--proxy <host>', 'use the login of this proxy (default: the current profile)')
    .addHelpText('after', `
Examples:
  postern ssh web1                         a shell on web1 as your local user (or your first login)
  postern ssh ubuntu@web1 'uptime'         a command; the exit status is the command's
  postern ssh root@env=prod hostname       on every node labelled env=prod, lines prefixed [node]
  postern ssh -N -L 8080:localhost:80 web1 forward a port until Ctrl-C

The node must present the host certificate of the cluster; an unknown host key is refused.
Exit status: the remote command's, 255 when the connection fails, 4 when not logged in.`)
    .action(async (destination: string, command: string[], opts: SshOptions) => {
      state.exitCode = await runSsh({ ...opts, destination, command }, deps);
    });

  // The program reads its own options (-v, --debug) anywhere in argv, so `postern ssh web1
  // uname -v` would print Postern's version. For `ssh` only, it stops at the subcommand, as
  // commander's enablePositionalOptions would (which, program-wide, would refuse
  // `postern login --debug`). Program options take no values, so the first word that is
  // not an option is the subcommand.
  const programParse = program.parseOptions.bind(program);
  program.parseOptions = (argv: string[]) => {
    const at = argv.findIndex((a) => !a.startsWith('-'));
    if (at < 0 || argv[at] !== cmd.name() || argv.slice(0, at).includes('--')) return programParse(argv);
    const before = programParse(argv.slice(0, at));
    return { operands: [...before.operands, argv[at]], unknown: [...before.unknown, ...argv.slice(at + 1)] };
  };

  // Commander hands this command the words the program read before the first option as
  // operands (none, given the above, but the program may parse differently one day), and
  // the rest as `argv`.
  const parse = cmd.parseOptions.bind(cmd);
  const takesValue = (flag: string): boolean | undefined => {
    const o = cmd.options.find((x) => x.short === flag || x.long === flag);
    return o ? o.required || o.optional : undefined;
  };
  cmd.parseOptions = (argv: string[]) => {
    const given = (cmd.parent?.args.length ?? 0) - 1 - argv.length;
    // The destination came before any option: every word after it is the command's.
    if (given > 0) return { operands: argv, unknown: [] };
    return parse(passThroughAfterDestination(argv, takesValue));
  };
}

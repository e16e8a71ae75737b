/**
 * `postern ssh`: Postern's own SSH client, end to end with the node through the proxy.
 *
 *   postern ssh [-l LOGIN] [-p PORT] [-A] [-L spec]… [-R spec]… [-N] [-t|-T] [-e CHAR] [USER@]TARGET [COMMAND…]
 *
 * TARGET is a node name, NAME.<cluster>, a host the cluster allows, or a label selector
 * (`env=prod`): then COMMAND runs on every matching node the user may reach, each line of
 * output prefixed with `[node] `. Exit status as OpenSSH's: the remote command's, or 255
 * when the connection fails (for a selector, the first non-zero status in node order).
 * With a terminal, OpenSSH's escapes (`~.`, `~?`, `~~`; src/client/escapes.ts).
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { tshHome } from '../../client/paths.ts';
import { loginOrRelogin } from '../relogin.ts';
import { parseDestination } from '../../client/ssh-client.ts';
import { parseForwardSpec } from '../../client/port-forward.ts';
import { parseEscapeChar } from '../../client/escapes.ts';
import type { EscapeChar } from '../../client/escapes.ts';
import type { ForwardSpec } from '../../client/port-forward.ts';
import { chooseLogin, nodeAccess } from '../../client/node-access.ts';
import { runOnNode, runOnSelector } from '../../client/node-run.ts';
import type { NodeRunDeps } from '../../client/node-run.ts';
import { isSelector } from '../../api/labels.ts';
import type { Labels } from '../../api/labels.ts';
import { UsageError } from '../../core/errors.ts';
import { escapeControl } from '../../core/text.ts';
import { selectorArg } from '../options.ts';
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
  /** -e: the escape character, `^X`, or none. */
  escapeChar?: EscapeChar;
}

/** Everything `runSsh` needs: the options, the destination and the command words. */
export interface SshRequest extends SshOptions {
  destination: string;
  command: string[];
}

/** Port 22 asks the proxy for the node's registered port, as `%p` does in a ProxyCommand. */
const DEFAULT_NODE_PORT = 22;

/** A validated request: what to run where, checked before anything is read or dialled. */
interface Plan {
  user?: string;
  target: string;
  selector?: Labels;
  command?: string;
  port: number;
  locals: ForwardSpec[];
  remotes: ForwardSpec[];
  forwardOnly: boolean;
  pty: 'auto' | 'yes' | 'no';
  escapeChar?: EscapeChar;
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
    ...(req.escapeChar !== undefined ? { escapeChar: req.escapeChar } : {}),
  };
  if (isSelector(dest.target)) {
    plan.selector = selectorArg(dest.target);
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

/** Runs `postern ssh`; returns the exit code. */
export async function runSsh(req: SshRequest, deps: Deps): Promise<number> {
  assertSsh2Patched(); // the ssh2 patches are there (docs/ssh2-patches.md), before anything uses ssh2
  const plan = planSsh(req);
  const home = tshHome(deps.env, deps.homeDir);
  const stored = await loginOrRelogin(home, req.proxy, deps, 'postern-ssh');
  const login = chooseLogin(plan, req.login, stored.certificate.principals, deps.env);
  const access = nodeAccess(stored, login, deps.env, () => deps.clock.now());
  let agentSocket: string | undefined;
  if (req.forwardAgent) {
    agentSocket = deps.env.SSH_AUTH_SOCK || undefined;
    if (!agentSocket) info(deps, 'warning: -A: no ssh-agent to forward (SSH_AUTH_SOCK is not set)');
  }
  const runDeps: NodeRunDeps = {
    io: deps.io,
    notice: (message) => info(deps, message),
    onStop: (handler) => deps.signals.on(['SIGINT', 'SIGTERM', 'SIGHUP'], handler),
    webClient: (opts) => deps.clients.web(opts),
    ...(deps.env.TERM ? { term: deps.env.TERM } : {}),
    ...(agentSocket ? { agentSocket } : {}),
  };
  return plan.selector
    ? runOnSelector(access, plan.selector, plan.target, plan.port, plan.command!, runDeps)
    : runOnNode(access, plan, runDeps);
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
    .addOption(new Option('-e, --escape-char <char>', 'the escape character of a terminal session: one character, ^X, or none (default: ~)').argParser(parseEscapeChar))
    .option('--proxy <host>', 'use the login of this proxy (default: the current profile)')
    .addHelpText('after', `
Examples:
  postern ssh web1                          a shell on web1 as your local user (or your first login)
  postern ssh ubuntu@web1 'uptime'          a command; the exit status is the command's
  postern ssh root@env=prod hostname        on every node labelled env=prod, lines prefixed [node]
  postern ssh -N -L 8080:localhost:80 web1  forward a port until Ctrl-C

Escapes, in a terminal session, typed right after Enter (as in ssh; -e changes the ~):
  ~.  disconnect    ~?  list the escapes    ~~  send one ~

The node must present the host certificate of the cluster; an unknown host key is refused.
The stream reaches the proxy as for postern proxy ssh: through the TLS tunnel on its web port
when it offers one, else its SSH listener (POSTERN_PROXY_TRANSPORT=ssh or tls chooses).
When the certificate has expired and there is a terminal, it offers to log in again there and
goes on (POSTERN_NO_TTY_LOGIN=1 turns that off).
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

/** `postern join ID`: joins a live session the proxy carries, as observer (watch) or peer (type too). */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { tshHome } from '../../client/paths.ts';
import { connectToProxy } from '../../client/proxy-conn.ts';
import { loadLogin } from '../../client/stored-login.ts';
import { joinSession } from '../../client/join.ts';
import { exitCodeOf } from '../../client/ssh-session.ts';
import { DEFAULT_ESCAPE_CHAR, parseEscapeChar } from '../../client/escapes.ts';
import type { EscapeChar } from '../../client/escapes.ts';
import { parseHostPort } from '../../core/text.ts';
import { UsageError } from '../../core/errors.ts';
import { DEFAULT_WEB_PORT } from '../../api/types.ts';
import type { JoinMode } from '../../api/types.ts';

/** Options of `postern join`. */
export interface JoinOptions {
  mode: JoinMode;
  proxy?: string;
  /** -e: the escape character, `^X`, or none. */
  escapeChar?: EscapeChar;
}

const ID_RE = /^[A-Za-z0-9_-]{8,64}$/;

/** Joins; the exit code: 0 when the session ended or we left, 1 when refused or removed, 255 when the connection failed. */
export async function runJoin(id: string, opts: JoinOptions, deps: Deps, state: RunState): Promise<void> {
  if (!ID_RE.test(id)) throw new UsageError(`invalid session id "${id}"`, { hint: 'See the live sessions you may join with:  postern sessions ls' });
  const home = tshHome(deps.env, deps.homeDir);
  const proxyHost = opts.proxy ? parseHostPort(opts.proxy, DEFAULT_WEB_PORT).host : undefined;
  const stored = loadLogin(home, proxyHost, deps.clock.now());
  const client = await connectToProxy({
    profile: stored.profile, keyPair: stored.keyPair, certificateText: stored.certificateText,
    knownHostsPath: stored.paths.knownHosts, username: stored.profile.user,
  });
  try {
    client.on('error', () => { /* ends the session below */ });
    const exit = await joinSession(client, id, opts.mode, deps.io, deps.env.TERM, opts.escapeChar === undefined ? DEFAULT_ESCAPE_CHAR : opts.escapeChar);
    // The shared screen may leave the cursor mid-line (at the owner's prompt): the local
    // prompt starts on a line of its own.
    if (deps.io.stdout.isTTY) deps.io.stdout.write('\r\n');
    state.exitCode = exitCodeOf(exit);
  } finally {
    client.end();
  }
}

/** Registers `postern join`. */
export function registerJoin(program: Command, deps: Deps, state: RunState): void {
  program.command('join').description('join a live session: watch it (observer) or type in it too (peer)')
    .argument('<id>', 'the session, as `postern sessions ls` lists it')
    .addOption(new Option('--mode <mode>', 'observer: see the screen; peer: share the keyboard').choices(['observer', 'peer']).default('observer'))
    .option('--proxy <host[:port]>', 'the profile to use (default: the current one)')
    .addOption(new Option('-e, --escape-char <char>', 'the escape character on a terminal: one character, ^X, or none (default: ~)').argParser(parseEscapeChar))
    .addHelpText('after', `
Everyone in the session sees the same screen and who joins or leaves; joining is audited.
You may join your own sessions; an admin's role decides whose others (join_sessions).
Leave with ~. at the start of a line (an observer also with Ctrl-C); ~? lists the escapes,
~~ sends one ~, -e changes the ~ (as in ssh). Without a terminal,
stdin is sent as is and its end leaves. A lock on you, or a reset or removal of your
account, removes you from the session within seconds, saying why; it goes on for the others.

Exit status: 0 when the session ends or you leave; 1 when the proxy refuses the join (unknown
id, your roles do not allow it, a lock) or removes you from the session; 2 on a usage error;
4 when not logged in or the certificate expired; 255 when the connection fails or the proxy
refuses the certificate (after a reset or removal; a lock on you says why).

Examples:
  postern sessions ls
  postern join 3fJq8x0d2kLm --mode observer
  echo uptime | postern join 3fJq8x0d2kLm --mode peer`)
    .action((id: string, opts: JoinOptions) => runJoin(id, opts, deps, state));
}

/**
 * The commander tree. Each command lives in its own file under commands/ and registers
 * itself here; man pages and completions are generated from this tree.
 */
import { Command } from 'commander';
import type { Deps } from './deps.ts';
import type { RunState } from './run-state.ts';
import { VERSION } from '../core/version.ts';

/** Adds one command (and its subcommands) to the tree. */
type Register = (program: Command, deps: Deps, state: RunState) => void;

/**
 * Every top-level command, in the order help lists them, loaded only when needed: a run
 * of `postern proxy ssh` loads that command's module and nothing else, which keeps start-up
 * fast (see docs/benchmarks.md). With code splitting, each is its own chunk of the bundle.
 */
const COMMANDS: ReadonlyArray<[string, () => Promise<Register>]> = [
  ['login', async () => (await import('./commands/login.ts')).registerLogin],
  ['status', async () => (await import('./commands/status.ts')).registerStatus],
  ['logout', async () => (await import('./commands/logout.ts')).registerLogout],
  ['ls', async () => (await import('./commands/ls.ts')).registerLs],
  ['ssh', async () => (await import('./commands/ssh.ts')).registerSsh],
  ['proxy', async () => (await import('./commands/proxy/proxy.ts')).registerProxy],
  ['config', async () => (await import('./commands/config.ts')).registerConfig],
  ['recordings', async () => (await import('./commands/recordings/recordings.ts')).registerRecordings],
  ['play', async () => (await import('./commands/play.ts')).registerPlay],
  ['sessions', async () => (await import('./commands/sessions/sessions.ts')).registerSessions],
  ['join', async () => (await import('./commands/join.ts')).registerJoin],
  ['signup', async () => (await import('./commands/signup.ts')).registerSignup],
  ['serve', async () => (await import('./commands/serve.ts')).registerServe],
  ['users', async () => (await import('./commands/users/users.ts')).registerUsers],
  ['nodes', async () => (await import('./commands/nodes/nodes.ts')).registerNodes],
  ['roles', async () => (await import('./commands/roles/roles.ts')).registerRoles],
  ['tokens', async () => (await import('./commands/tokens/tokens.ts')).registerTokens],
  ['proxies', async () => (await import('./commands/proxies/proxies.ts')).registerProxies],
  ['lock', async () => (await import('./commands/lock/lock.ts')).registerLock],
  ['audit', async () => (await import('./commands/audit.ts')).registerAudit],
  ['settings', async () => (await import('./commands/settings/settings.ts')).registerSettings],
  ['ca', async () => (await import('./commands/ca/ca.ts')).registerCa],
  ['storage', async () => (await import('./commands/storage/storage.ts')).registerStorage],
  ['version', async () => (await import('./commands/version.ts')).registerVersion],
];

/** The command an argv names (its first word that is not an option), if it is one of ours. */
function commandOf(argv: string[] | undefined): string | undefined {
  if (!argv) return undefined;
  const first = argv.find((a) => !a.startsWith('-'));
  return COMMANDS.some(([name]) => name === first) ? first : undefined;
}

/**
 * Builds the tree. With `argv`, only the command it names is loaded (all of them when it
 * names none, for help and suggestions); without, all of them (docs, completions).
 */
export async function buildProgram(deps: Deps, state: RunState, argv?: string[]): Promise<Command> {
  const program = new Command('postern')
    .description('SSH access through short-lived OpenSSH certificates: log in, reach servers, run the gateway')
    .version(VERSION, '-v, --version', 'print the version and exit')
    .option('--debug', 'print stack traces and debug logs')
    .helpOption('-h, --help', 'show help for a command')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => deps.io.stdout.write(s),
      writeErr: (s) => deps.io.stderr.write(s),
    });
  program.addHelpText('after', `
Engineers:  postern login --proxy HOST --user NAME, then postern status
Admins:     postern serve, postern users add NAME --logins LOGINS

Environment: TSH_HOME (default ~/.tsh), POSTERN_DATA_DIR, POSTERN_STORAGE, SSH_AUTH_SOCK, NO_COLOR`);
  const only = commandOf(argv);
  // `postern --version` needs no command at all; help and unknown words need every one.
  const versionOnly = only === undefined && argv !== undefined && argv.some((a) => a === '-v' || a === '--version');
  const wanted = versionOnly ? [] : COMMANDS.filter(([name]) => only === undefined || name === only);
  const registers = await Promise.all(wanted.map(([, load]) => load()));
  for (const register of registers) register(program, deps, state);
  return program;
}

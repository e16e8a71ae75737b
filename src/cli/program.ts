/**
 * The commander tree. Each command lives in its own file under commands/ and registers
 * itself here; man pages and completions are generated from this tree.
 */
import { Command } from 'commander';
import type { Deps } from './deps.ts';
import { VERSION } from '../core/version.ts';
import { registerServe } from './commands/serve.ts';
import { registerUsers } from './commands/users.ts';
import { registerTokens } from './commands/tokens.ts';
import { registerCa } from './commands/ca.ts';
import { registerSignup } from './commands/signup.ts';
import { registerLogin } from './commands/login.ts';
import { registerStatus } from './commands/status.ts';
import { registerLogout } from './commands/logout.ts';
import { registerVersion } from './commands/version.ts';
import { registerLs } from './commands/ls.ts';
import { registerProxySsh } from './commands/proxy-ssh.ts';
import { registerConfig } from './commands/config.ts';
import { registerSsh } from './commands/ssh.ts';
import { registerNodes } from './commands/nodes.ts';
import { registerRoles } from './commands/roles.ts';

/** Where a command leaves its exit code when it is not 0 (e.g. a remote status). */
export interface RunState {
  exitCode: number;
}

/** Builds the whole tree. */
export function buildProgram(deps: Deps, state: RunState): Command {
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

Environment: TSH_HOME (default ~/.tsh), POSTERN_DATA_DIR, SSH_AUTH_SOCK, NO_COLOR`);
  registerLogin(program, deps, state);
  registerStatus(program, deps, state);
  registerLogout(program, deps, state);
  registerLs(program, deps, state);
  registerProxySsh(program, deps, state);
  registerConfig(program, deps, state);
  registerSignup(program, deps, state);
  registerServe(program, deps, state);
  registerUsers(program, deps, state);
  registerNodes(program, deps, state);
  registerRoles(program, deps, state);
  registerTokens(program, deps, state);
  registerCa(program, deps, state);
  registerVersion(program, deps, state);
  registerSsh(program, deps, state);
  return program;
}

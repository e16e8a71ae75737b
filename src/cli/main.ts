/**
 * The CLI's entry: builds the command tree, runs it, and is the only place that prints
 * errors or decides the exit code.
 */
import { CommanderError } from 'commander';
import type { Deps } from './deps.ts';
import { buildProgram } from './program.ts';
import { printError } from './output.ts';
import { ExitCode } from '../core/errors.ts';

/** Runs the CLI with arguments (without node and script) and returns the exit code. */
export async function main(argv: string[], deps: Deps): Promise<number> {
  const debug = argv.includes('--debug') || deps.env.POSTERN_DEBUG === '1';
  const state = { exitCode: ExitCode.ok as number };
  const program = await buildProgram(deps, state, argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return state.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok;
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    return printError(deps, err, debug);
  }
}

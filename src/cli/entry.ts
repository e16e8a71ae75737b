/** The process entry the launcher imports: real deps, then `main`. */
import { main } from './main.ts';
import { processDeps } from './deps.ts';

/**
 * A reader that went away (`postern ls | head -1`) is not an error: stop quietly, as
 * OpenSSH's tools do on SIGPIPE, instead of Node's stack trace for an unhandled EPIPE.
 */
function quietOnEpipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

/** Runs the CLI for this process and returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  quietOnEpipe(process.stdout);
  quietOnEpipe(process.stderr);
  return main(argv, processDeps());
}

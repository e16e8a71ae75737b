/** The process entry the launcher imports: real deps, then `main`. */
import { main } from './main.ts';
import { processDeps } from './deps.ts';

/** Runs the CLI for this process and returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  return main(argv, processDeps());
}

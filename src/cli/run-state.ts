/** What a command hands back to `main` besides throwing: its exit code when not 0. */

/** Where a command leaves its exit code when it is not 0 (e.g. a remote status). */
export interface RunState {
  exitCode: number;
}

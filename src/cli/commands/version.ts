/** `postern version`: the version, plain or as JSON. */
import type { Command } from 'commander';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { VERSION } from '../../core/version.ts';
import { out, outJson } from '../output.ts';
import { formatOption } from '../options.ts';

/** Options of `postern version`. */
export interface VersionOptions { format: 'text' | 'json' }

/** Prints the version. */
export function runVersion(opts: VersionOptions, deps: Deps): void {
  if (opts.format === 'json') outJson(deps, { version: VERSION, node: process.versions.node });
  else out(deps, `postern ${VERSION}`);
}

/** Registers `postern version`. */
export function registerVersion(program: Command, deps: Deps, _state: RunState): void {
  program.command('version').description('print the version').addOption(formatOption(['text', 'json']))
    .action((opts: VersionOptions) => runVersion(opts, deps));
}

/** `postern recordings ls`: the session recordings the logged-in user may play. */
import type { Command } from 'commander';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { withSignedWeb } from '../signed-web.ts';
import { formatOption } from '../options.ts';
import { out, outJson, info, table } from '../output.ts';
import { formatDuration } from '../../core/durations.ts';
import type { RecordingMeta } from '../../api/types.ts';

/** Options of `postern recordings ls`. */
export interface RecordingsLsOptions {
  format: 'text' | 'json';
  proxy?: string;
}

/** A start time as `2026-05-01 10:00:00Z`: the ISO time without the noise. */
export function formatStarted(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** One row of the table. */
function row(r: RecordingMeta): string[] {
  return [r.id, r.user, r.node, r.login, formatStarted(r.startedAt), formatDuration(Math.round(r.durationSec * 1000)), r.status];
}

/** Lists recordings through the proxy's web API: the user's own, or every one for an admin. */
export async function runRecordingsLs(opts: RecordingsLsOptions, deps: Deps): Promise<void> {
  const list = await withSignedWeb(opts.proxy, deps, (web, sign) => web.listRecordings(sign));
  if (opts.format === 'json') { outJson(deps, list); return; }
  if (list.length === 0) { info(deps, 'No recordings yet: sessions are recorded in recording proxy mode and in the web terminal.'); return; }
  out(deps, table(['ID', 'User', 'Node', 'Login', 'Started', 'Length', 'Status'], list.map(row)));
}

/** Registers `postern recordings`. */
export function registerRecordings(program: Command, deps: Deps, _state: RunState): void {
  const recordings = program.command('recordings').description('session recordings you may play');
  recordings.command('ls').description('list the recordings you may play, newest first (admins: every user\'s)')
    .option('--proxy <host[:port]>', 'the profile to use (default: the current one)')
    .addOption(formatOption(['text', 'json']))
    .addHelpText('after', `
A recording is "incomplete" while its session runs, or when the proxy that recorded it
stopped without finishing it; it then holds everything up to the proxy's last chunk.

Examples:
  postern recordings ls
  postern recordings ls --format json
  postern play ID`)
    .action((opts: RecordingsLsOptions) => runRecordingsLs(opts, deps));
}

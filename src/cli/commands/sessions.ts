/** `postern sessions ls`: the live sessions the logged-in user may see and join. */
import type { Command } from 'commander';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { withSignedWeb } from '../signed-web.ts';
import { formatOption } from '../options.ts';
import { out, outJson, info, table } from '../output.ts';
import { escapeControl } from '../../core/text.ts';
import type { ActiveSession } from '../../api/types.ts';
import { formatStarted } from './recordings.ts';

/** Options of `postern sessions ls`. */
export interface SessionsLsOptions {
  format: 'text' | 'json';
  proxy?: string;
}

/** Who is in a session, as `alice (owner), bob (observer)`. */
export function participantsText(s: ActiveSession): string {
  return s.participants.map((p) => `${escapeControl(p.user)} (${p.mode})`).join(', ');
}

/** Lists live sessions through the proxy's web API. */
export async function runSessionsLs(opts: SessionsLsOptions, deps: Deps): Promise<void> {
  const list = await withSignedWeb(opts.proxy, deps, (web, sign) => web.listSessions(sign));
  if (opts.format === 'json') { outJson(deps, list); return; }
  if (list.length === 0) { info(deps, 'No live sessions you may see. Sessions the proxy carries (the web terminal, recording proxy mode) are listed here while they run.'); return; }
  out(deps, table(['ID', 'Kind', 'User', 'Node', 'Login', 'Started', 'Participants'], list.map((s) => [
    s.id, s.kind, escapeControl(s.user), escapeControl(s.node), escapeControl(s.login), formatStarted(s.startedAt), participantsText(s),
  ])));
}

/** Registers `postern sessions`. */
export function registerSessions(program: Command, deps: Deps, _state: RunState): void {
  const sessions = program.command('sessions').description('live sessions you may see and join');
  sessions.command('ls').description('list the live sessions you may see: yours, and those your roles may join')
    .option('--proxy <host[:port]>', 'the profile to use (default: the current one)')
    .addOption(formatOption(['text', 'json']))
    .addHelpText('after', `
Sessions the proxy carries itself are listed while they run: web terminals, and every
session when the cluster records at the proxy (session_recording: proxy).

Examples:
  postern sessions ls
  postern join ID --mode observer`)
    .action((opts: SessionsLsOptions) => runSessionsLs(opts, deps));
}

/** `postern audit`: the audit log, for admins, with filters. */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { withAdminClient } from '../admin.ts';
import { dataDirOption, formatOption } from '../options.ts';
import { out, outJson, table, info } from '../output.ts';
import { parseDuration } from '../../core/durations.ts';
import { UsageError } from '../../core/errors.ts';

/** Options of `postern audit`. */
export interface AuditOptions { since?: string; type?: string; user?: string; limit?: number; format: 'text' | 'json'; dataDir?: string }

/** `--since`: a duration back from now (`1h`) or a date/time (`2026-11-23T10:00Z`). */
export function parseSince(text: string, now: Date): Date {
  if (/^\d+(\.\d+)?(ms|s|m|h|d)/.test(text)) return new Date(now.getTime() - parseDuration(text, '--since'));
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UsageError(`invalid --since "${text}"`, { hint: 'Use a duration back from now (30m, 2h, 7d) or a date and time (2026-11-23T10:00Z)' });
  return new Date(t);
}

const DETAIL_SKIP = new Set(['time', 'type', 'user', 'addr', 'success', 'message']);

/** Prints audit events. */
export async function runAudit(opts: AuditOptions, deps: Deps): Promise<void> {
  const since = opts.since ? parseSince(opts.since, deps.clock.now()).toISOString() : undefined;
  const events = await withAdminClient(opts.dataDir, deps, (auth) =>
    auth.searchAudit({ ...(since ? { since } : {}), ...(opts.type ? { type: opts.type } : {}), ...(opts.user ? { user: opts.user } : {}), ...(opts.limit ? { limit: opts.limit } : {}) }));
  if (opts.format === 'json') { outJson(deps, events); return; }
  if (events.length === 0) { info(deps, 'No events match.'); return; }
  out(deps, table(['Time', 'Event', 'User', 'From', 'Outcome', 'Details'], events.map((e) => [
    e.time, e.type, e.user ?? '', e.addr ?? '', e.success ? 'ok' : 'failed',
    [e.message, ...Object.entries(e).filter(([k, v]) => !DETAIL_SKIP.has(k) && v !== undefined).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)].filter(Boolean).join(' '),
  ])));
}

/** Registers `postern audit`. */
export function registerAudit(program: Command, deps: Deps, _state: RunState): void {
  program.command('audit').description('show the audit log (on the auth server)')
    .option('--since <when>', 'events since a duration ago (1h, 7d) or a date and time')
    .option('--type <type>', 'events of this type or its subtypes, e.g. user.login or access.denied')
    .option('--user <name>', 'events of this user')
    .addOption(new Option('--limit <n>', 'at most the last N events').argParser((v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new UsageError(`invalid --limit "${v}": a whole number above 0`);
      return n;
    }))
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .addHelpText('after', '\nEvents: user.login, user.login.failure, user.locked, cert.issued, user.signup, user.created, access.denied,\nsession.proxy, session.start, session.end, session.exec, session.join, port.forward,\nrecording.start, recording.end, web.session.create, node.added, role.changed, token.created,\nproxy.joined, cluster.settings, and more.')
    .action((opts: AuditOptions) => runAudit(opts, deps));
}

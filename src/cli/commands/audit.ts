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
import { escapeControl } from '../../core/text.ts';
import { AuditType } from '../../api/audit.ts';
import { didYouMean } from '../suggest.ts';

/** Words joined by ", " in lines of at most `width`. */
function wrapWords(words: string[], width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    const next = line ? `${line}, ${w}` : w;
    if (next.length > width && line) { lines.push(line + ','); line = w; } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

/** Options of `postern audit`. */
export interface AuditOptions { since?: string; type?: string; user?: string; limit?: number; format: 'text' | 'json'; dataDir?: string }

/** `--since`: a duration back from now (`1h`) or a date/time (`2026-11-23T10:00Z`). */
export function parseSince(text: string, now: Date): Date {
  if (/^\d+(\.\d+)?(ms|s|m|h|d)/.test(text)) return new Date(now.getTime() - parseDuration(text, '--since'));
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UsageError(`invalid --since "${text}"`, { hint: 'Use a duration back from now (30m, 2h, 7d) or a date and time (2026-11-23T10:00Z)' });
  return new Date(t);
}

/** Every event type, and every dotted prefix of one (`user` matches `user.login`, as auth's search does). */
export const AUDIT_TYPES: readonly string[] = [...new Set(Object.values(AuditType).flatMap((t) => t.split('.').map((_, i, parts) => parts.slice(0, i + 1).join('.'))))].sort();

/** Checks `--type`: an event type or a prefix of one; else a usage error with the near ones and the list. */
export function parseAuditType(text: string): string {
  if (AUDIT_TYPES.includes(text)) return text;
  const near = didYouMean(text, AUDIT_TYPES);
  throw new UsageError(`unknown audit event type "${escapeControl(text)}"`, {
    hint: `${near ? `${near} ` : ''}Types: ${Object.values(AuditType).sort().join(', ')} (or a prefix such as user or session)`,
  });
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
    .addOption(new Option('--type <type>', 'events of this type or its subtypes, e.g. user.login or access.denied').argParser(parseAuditType))
    .option('--user <name>', 'events of this user')
    .addOption(new Option('--limit <n>', 'at most the last N events').argParser((v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new UsageError(`invalid --limit "${v}": a whole number above 0`);
      return n;
    }))
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .addHelpText('after', `\nEvents (--type takes one, or a prefix such as user or session):\n${wrapWords(Object.values(AuditType).sort(), 88).map((l) => `  ${l}`).join('\n')}`)
    .action((opts: AuditOptions) => runAudit(opts, deps));
}

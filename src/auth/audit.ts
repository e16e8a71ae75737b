/**
 * The audit log: every security-relevant event, kept by auth in time order. The event
 * names and the event's shape are the API's (src/api/audit.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Backend } from '../storage/backend.ts';
import type { AuditEvent, AuditQuery, NewAuditEvent } from '../api/audit.ts';

/** Appends an event; keys sort by time so ranges read in order. */
export async function emitAudit(backend: Backend, event: NewAuditEvent & { time?: string }, now: Date): Promise<AuditEvent> {
  const full = { ...event, time: event.time ?? now.toISOString() } as AuditEvent;
  const key = `audit/${String(now.getTime()).padStart(15, '0')}-${randomBytes(4).toString('hex')}`;
  await backend.put(key, JSON.stringify(full));
  return full;
}

/** Filters for reading the log, as auth applies them: the API's, with `since` a time. */
export type AuditFilter = Omit<AuditQuery, 'since' | 'requester'> & { since?: Date };

/** Keys read per page when a query has a limit: newest first, until enough match. */
const PAGE = 2_000;

/**
 * Reads events, oldest first, matching the filters. With a limit (the web UI's audit page,
 * `postern audit`) only the newest `limit` matches are wanted: the log is read backwards
 * from now in pages and stops as soon as it has them, so the cost follows what is shown,
 * not the size of the log (1,000,000 events: docs/benchmarks.md).
 */
export async function searchAudit(backend: Backend, q: AuditFilter = {}): Promise<AuditEvent[]> {
  const floor = q.since ? `audit/${String(q.since.getTime() - 1).padStart(15, '0')}~` : undefined;
  const matches = (e: AuditEvent): boolean => (!q.type || e.type === q.type || e.type.startsWith(`${q.type}.`)) && (!q.user || e.user === q.user);
  if (!q.limit) {
    const items = await backend.getRange('audit/', { after: floor });
    return items.map((i) => JSON.parse(i.value) as AuditEvent).filter(matches);
  }
  const newestFirst: AuditEvent[] = [];
  let before: string | undefined;
  for (;;) {
    const page = await backend.getRange('audit/', { reverse: true, limit: PAGE, ...(before ? { after: before } : {}) });
    for (const item of page) {
      if (floor !== undefined && item.key <= floor) return newestFirst.reverse();
      const e = JSON.parse(item.value) as AuditEvent;
      if (matches(e)) newestFirst.push(e);
      if (newestFirst.length === q.limit) return newestFirst.reverse();
    }
    if (page.length < PAGE) return newestFirst.reverse();
    before = page[page.length - 1].key;
  }
}

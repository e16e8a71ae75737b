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

/** Reads events, oldest first, matching the filters. */
export async function searchAudit(backend: Backend, q: AuditFilter = {}): Promise<AuditEvent[]> {
  const after = q.since ? `audit/${String(q.since.getTime() - 1).padStart(15, '0')}~` : undefined;
  const items = await backend.getRange('audit/', { after });
  const out: AuditEvent[] = [];
  for (const item of items) {
    const e = JSON.parse(item.value) as AuditEvent;
    if (q.type && e.type !== q.type && !e.type.startsWith(`${q.type}.`)) continue;
    if (q.user && e.user !== q.user) continue;
    out.push(e);
  }
  return q.limit ? out.slice(-q.limit) : out;
}

// The audit log, for admins, with filters.
import { ErrorMessage } from '../ui.tsx';
import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../api.ts';
import type { AuditEvent } from '../../../src/api/audit.ts';

const SKIP = new Set(['time', 'type', 'user', 'addr', 'success', 'message']);

export function Audit() {
  const [type, setType] = useState('');
  const [user, setUser] = useState('');
  const [since, setSince] = useState('');
  const [events, setEvents] = useState<AuditEvent[] | undefined>();
  const [error, setError] = useState('');
  useEffect(() => {
    const p = new URLSearchParams();
    if (type) p.set('type', type);
    if (user) p.set('user', user);
    if (since) p.set('since', new Date(since).toISOString());
    const t = setTimeout(() => { void api<AuditEvent[]>('GET', `/webapi/audit${p.size ? `?${p}` : ''}`).then((e) => { setEvents(e.reverse()); setError(''); }, (err) => setError(errorText(err))); }, 200);
    return () => clearTimeout(t);
  }, [type, user, since]);
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit log</h1>
      <div class="toolbar">
        <label>Event type<input name="type" value={type} onInput={(e) => setType(e.currentTarget.value)} placeholder="user.login, session" /></label>
        <label>User<input name="user" value={user} onInput={(e) => setUser(e.currentTarget.value)} /></label>
        <label>Since<input name="since" type="datetime-local" value={since} onInput={(e) => setSince(e.currentTarget.value)} /></label>
      </div>
      {error && <ErrorMessage>{error}</ErrorMessage>}
      <div aria-live="polite">{!events ? <p>Loading…</p> : events.length === 0 ? <p>No events match.</p> : <p class="sr">{events.length === 1 ? '1 event' : `${events.length} events`}</p>}</div>
      {events && events.length > 0 && (
        <table class="list">
          <thead><tr><th>Time</th><th>Event</th><th>User</th><th>From</th><th>Outcome</th><th>Details</th></tr></thead>
          <tbody>
            {events.map((e) => (
              <tr>
                <td class="mono" data-label="Time">{new Date(e.time).toLocaleString()}</td><td data-label="Event">{e.type}</td><td data-label="User">{e.user ?? ''}</td><td class="mono" data-label="From">{e.addr ?? ''}</td>
                <td class={e.success ? 'ok' : 'bad'} data-label="Outcome"><span aria-hidden="true">{e.success ? '✓ ' : '✗ '}</span>{e.success ? 'ok' : 'failed'}</td>
                <td class="details" data-label="Details">{[e.message, ...Object.entries(e).filter(([k, v]) => !SKIP.has(k) && v !== undefined).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)].filter(Boolean).join(' ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

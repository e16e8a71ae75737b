// Admin: locks (as `postern lock`): stop a user, everyone with a role, a login or a node,
// with a reason and an optional expiry; the list of those in force, each removable.
import { useState } from 'preact/hooks';
import { api, errorText } from '../api.ts';
import { ErrorMessage, SuccessMessage } from '../ui.tsx';
import type { LockInfo, LockTargetKind } from '../../../src/api/locks.ts';
import { LOCK_TARGET_KINDS, lockTargetText } from '../../../src/api/locks.ts';
import { AdminNav, ConfirmButton, useLoad } from './admin.tsx';

/** How long a lock lasts: until removed, or one of these. */
const LOCK_TTLS: ReadonlyArray<[number, string]> = [[0, 'until removed'], [15 * 60_000, '15 minutes'], [3_600_000, '1 hour'], [24 * 3_600_000, '24 hours'], [7 * 86_400_000, '7 days']];

export function AdminLocks() {
  const locks = useLoad<LockInfo[]>('/webapi/admin/locks');
  const [kind, setKind] = useState<LockTargetKind>('user');
  const [value, setValue] = useState('');
  const [reason, setReason] = useState('');
  const [ttl, setTtl] = useState(0);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [done, setDone] = useState('');

  const act = async (what: () => Promise<string>): Promise<void> => {
    setBusy(true); setError(''); setDone('');
    try { setDone(await what()); } catch (err) { setError(errorText(err)); } finally { setBusy(false); locks.reload(); }
  };
  const create = (e: Event): void => {
    e.preventDefault();
    if (!value.trim()) { setError(`enter the ${kind} to lock`); return; }
    void act(async () => {
      const made = await api<LockInfo>('POST', '/webapi/admin/locks', { target: { [kind]: value.trim() }, reason: reason.trim(), ...(ttl ? { ttlMs: ttl } : {}) });
      setValue(''); setReason('');
      return `Locked ${lockTargetText(made.target)}${made.expiresAt ? ` until ${new Date(made.expiresAt).toLocaleString()}` : ' until removed'}.`;
    });
  };
  const remove = (l: LockInfo): void => void act(async () => {
    await api('DELETE', `/webapi/admin/locks/${encodeURIComponent(l.id)}`);
    return `The lock on ${lockTargetText(l.target)} was removed.`;
  });

  return (
    <section aria-labelledby="admin-title" class="admin">
      <AdminNav current="locks" />
      <h1 id="admin-title">Locks</h1>
      <form class="card admin-form" onSubmit={create} aria-labelledby="lock-form-title" noValidate>
        <h2 id="lock-form-title">Lock</h2>
        <p class="muted">In force at every proxy within seconds: no new login or connection, and live sessions it covers end with the reason.</p>
        <label>What to lock<select name="kind" value={kind} onChange={(e) => setKind(e.currentTarget.value as LockTargetKind)}>
          {LOCK_TARGET_KINDS.map((k) => <option value={k}>{k === 'role' ? 'everyone with a role' : `a ${k}`}</option>)}
        </select></label>
        <label>{kind[0].toUpperCase() + kind.slice(1)}<input name="target" value={value} autoComplete="off" required onInput={(e) => setValue(e.currentTarget.value)} /></label>
        <label>Reason<input name="reason" value={reason} autoComplete="off" maxLength={1000} placeholder="laptop stolen" onInput={(e) => setReason(e.currentTarget.value)} /></label>
        <label>Lasts<select name="ttl" value={String(ttl)} onChange={(e) => setTtl(Number(e.currentTarget.value))}>
          {LOCK_TTLS.map(([ms, text]) => <option value={String(ms)}>{text}</option>)}
        </select></label>
        <div><button type="submit" class="danger solid" disabled={busy}>Lock</button></div>
      </form>

      {error && <ErrorMessage>{error}</ErrorMessage>}
      {done && <SuccessMessage>{done}</SuccessMessage>}
      {locks.error && <ErrorMessage>{locks.error}</ErrorMessage>}
      <div aria-live="polite">{!locks.data ? <p>Loading…</p> : locks.data.length === 0 ? <p class="muted">No locks.</p> : <p class="sr">{locks.data.length === 1 ? '1 lock' : `${locks.data.length} locks`}</p>}</div>
      {locks.data && locks.data.length > 0 && (
        <table class="list">
          <thead><tr><th>Target</th><th>Reason</th><th>By</th><th>Created</th><th>Expires</th><th><span class="sr">Actions</span></th></tr></thead>
          <tbody>
            {locks.data.map((l) => (
              <tr data-lock={l.id}>
                <td data-label="Target">{lockTargetText(l.target)}</td>
                <td data-label="Reason">{l.reason || <span class="muted">none</span>}</td>
                <td data-label="By">{l.createdBy}</td>
                <td data-label="Created">{new Date(l.createdAt).toLocaleString()}</td>
                <td data-label="Expires">{l.expiresAt ? new Date(l.expiresAt).toLocaleString() : 'never'}</td>
                <td class="actions"><ConfirmButton label="Remove" what={`the lock on ${lockTargetText(l.target)}`} onConfirm={() => remove(l)} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

// Admin: the users. Invite one (a link to copy and hand over), give a new invite to one
// who lost their password or authenticator (reset), remove one.
import { useState } from 'preact/hooks';
import { api, errorText } from '../api.ts';
import type { Me } from '../api.ts';
import { ErrorMessage, SuccessMessage } from '../ui.tsx';
import type { InviteResult, UserInfo } from '../../../src/api/types.ts';
import type { RoleSpec } from '../../../src/api/auth-types.ts';
import { AdminNav, ConfirmButton, CopyBlock, splitList, TTL_CHOICES, useLoad } from './admin.tsx';

/** Edits a user's roles and logins in place (no new invite), as `postern users update` does. */
function AccessEditor(props: { user: UserInfo; roles: RoleSpec[]; onDone: (msg: string) => void; onCancel: () => void }) {
  const [picked, setPicked] = useState<string[]>(props.user.roles);
  const [logins, setLogins] = useState(props.user.logins.join(', '));
  const [error, setError] = useState('');
  const name = props.user.name;
  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (picked.length === 0) { setError('pick at least one role'); return; }
    if (splitList(logins).length === 0) { setError('give at least one login, e.g. ubuntu'); return; }
    try {
      await api('PATCH', `/webapi/admin/users/${encodeURIComponent(name)}`, { setRoles: picked, setLogins: splitList(logins) });
      props.onDone(`The roles and logins of ${name} were saved.`);
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form class="inline-form" onSubmit={(e) => void save(e)} aria-label={`Roles and logins of ${name}`}>
      <fieldset>
        <legend>Roles of {name}</legend>
        {props.roles.map((r) => (
          <label class="check"><input type="checkbox" name="roles" value={r.name} checked={picked.includes(r.name)}
            onChange={(e) => setPicked(e.currentTarget.checked ? [...picked, r.name] : picked.filter((x) => x !== r.name))} />{r.name}</label>
        ))}
      </fieldset>
      <label>Logins of {name}<input name="logins" value={logins} autoComplete="off" onInput={(e) => setLogins(e.currentTarget.value)} /></label>
      <div class="row">
        <button type="submit" class="small">Save</button>
        <button type="button" class="small secondary" onClick={props.onCancel}>Cancel</button>
      </div>
      {error && <ErrorMessage>{error}</ErrorMessage>}
    </form>
  );
}

export function AdminUsers(props: { me: Me }) {
  const users = useLoad<UserInfo[]>('/webapi/admin/users');
  const roles = useLoad<RoleSpec[]>('/webapi/admin/roles');
  const [name, setName] = useState('');
  const [picked, setPicked] = useState<string[]>(['access']);
  const [logins, setLogins] = useState('');
  const [ttl, setTtl] = useState(TTL_CHOICES[0][0]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [done, setDone] = useState('');
  const [invite, setInvite] = useState<InviteResult & { why: string } | undefined>();
  const [editing, setEditing] = useState<string | undefined>();

  const act = async (what: () => Promise<string>): Promise<void> => {
    setBusy(true); setError(''); setDone('');
    try { setDone(await what()); } catch (err) { setError(errorText(err)); } finally { setBusy(false); users.reload(); }
  };
  const add = (e: Event): void => {
    e.preventDefault();
    if (!name.trim()) { setError('enter the new user\'s name'); return; }
    if (picked.length === 0) { setError('pick at least one role'); return; }
    if (splitList(logins).length === 0) { setError('give at least one login, e.g. ubuntu'); return; }
    void act(async () => {
      const r = await api<InviteResult>('POST', '/webapi/admin/users', { name: name.trim(), roles: picked, logins: splitList(logins), inviteTtlMs: ttl });
      setInvite({ ...r, why: 'sign up' });
      setName(''); setLogins('');
      return `User ${r.user} was invited.`;
    });
  };
  const reset = (u: string): void => void act(async () => {
    const r = await api<InviteResult>('POST', `/webapi/admin/users/${encodeURIComponent(u)}/reset`, {});
    setInvite({ ...r, why: 'set a new password and authenticator' });
    return `${u} was reset: their password and authenticator no longer work.`;
  });
  const unlock = (u: string): void => void act(async () => {
    await api('POST', `/webapi/admin/users/${encodeURIComponent(u)}/unlock`, {});
    return `${u} was unlocked: they may log in again.`;
  });
  const remove = (u: string): void => void act(async () => {
    await api('DELETE', `/webapi/admin/users/${encodeURIComponent(u)}`);
    if (invite?.user === u) setInvite(undefined);
    return `User ${u} was removed.`;
  });

  return (
    <section aria-labelledby="admin-title" class="admin">
      <AdminNav current="users" />
      <h1 id="admin-title">Users</h1>
      <form class="card admin-form" onSubmit={add} aria-labelledby="invite-title" noValidate>
        <h2 id="invite-title">Invite a user</h2>
        <label>User name<input name="name" value={name} autoComplete="off" required onInput={(e) => setName(e.currentTarget.value)} /></label>
        <fieldset>
          <legend>Roles</legend>
          {!roles.data ? <p class="muted">Loading roles…</p> : roles.data.map((r) => (
            <label class="check"><input type="checkbox" name="roles" value={r.name} checked={picked.includes(r.name)}
              onChange={(e) => setPicked(e.currentTarget.checked ? [...picked, r.name] : picked.filter((x) => x !== r.name))} />{r.name}</label>
          ))}
        </fieldset>
        <label>Logins<input name="logins" value={logins} autoComplete="off" placeholder="ubuntu, deploy" aria-describedby="logins-help" onInput={(e) => setLogins(e.currentTarget.value)} /></label>
        <p id="logins-help" class="muted help">The user's own Unix logins, separated by commas (what {'{{internal.logins}}'} in a role stands for).</p>
        <label>Invite valid for<select name="ttl" value={String(ttl)} onChange={(e) => setTtl(Number(e.currentTarget.value))}>
          {TTL_CHOICES.map(([ms, text]) => <option value={String(ms)}>{text}</option>)}
        </select></label>
        <div><button type="submit" disabled={busy}>Invite</button></div>
      </form>

      {error && <ErrorMessage>{error}</ErrorMessage>}
      {done && <SuccessMessage>{done}</SuccessMessage>}
      {invite && (
        <div class="card wide" data-testid="invite-result">
          <p>Send this link to <strong>{invite.user}</strong> to {invite.why}. It works once, until {new Date(invite.expiresAt).toLocaleString()}.</p>
          <CopyBlock id="invite-link" label={`Invite link for ${invite.user}`} value={invite.inviteUrl} testid="invite-link" />
        </div>
      )}

      {users.error && <ErrorMessage>{users.error}</ErrorMessage>}
      <div aria-live="polite">{!users.data ? <p>Loading…</p> : <p class="sr">{users.data.length === 1 ? '1 user' : `${users.data.length} users`}</p>}</div>
      {users.data && users.data.length > 0 && (
        <table class="list">
          <thead><tr><th>Name</th><th>Roles</th><th>Logins</th><th>Status</th><th>Created</th><th><span class="sr">Actions</span></th></tr></thead>
          <tbody>
            {users.data.map((u) => (
              <tr data-user={u.name}>
                <td data-label="Name">{u.name}{u.name === props.me.user && <span class="muted"> (you)</span>}</td>
                {editing === u.name && roles.data
                  ? <td colSpan={2} data-label="Access"><AccessEditor user={u} roles={roles.data} onCancel={() => setEditing(undefined)} onDone={(msg) => { setEditing(undefined); setError(''); setDone(msg); users.reload(); }} /></td>
                  : <><td data-label="Roles">{u.roles.join(', ')}</td>
                    <td class="mono" data-label="Logins">{u.logins.join(', ') || <span class="muted">none</span>}</td></>}
                <td data-label="Status" class={u.status === 'locked' ? 'bad' : undefined}>{u.status}{u.lockedUntil && ` until ${new Date(u.lockedUntil).toLocaleString()}`}</td>
                <td data-label="Created">{new Date(u.createdAt).toLocaleDateString()}</td>
                <td class="actions">
                  {editing !== u.name && <button type="button" class="secondary" disabled={!roles.data} onClick={() => { setEditing(u.name); setDone(''); }}>Edit access<span class="sr"> of {u.name}</span></button>}
                  {u.status === 'locked' && <button type="button" class="secondary" disabled={busy} onClick={() => unlock(u.name)}>Unlock<span class="sr"> {u.name}</span></button>}
                  <ConfirmButton label="Reset" what={u.name} onConfirm={() => reset(u.name)} />
                  {u.name !== props.me.user && <ConfirmButton label="Remove" what={u.name} onConfirm={() => remove(u.name)} />}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

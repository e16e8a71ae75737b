// Admin: the roles. Built-in roles are shown read-only; others are created, edited and
// removed with a form whose fields are checked here first and by auth in full.
import { useState } from 'preact/hooks';
import { api, errorText } from '../api.ts';
import { ErrorMessage, SuccessMessage } from '../ui.tsx';
import type { RoleSpec } from '../../../src/api/auth-types.ts';
import type { JoinMode, JoinRule } from '../../../src/api/types.ts';
import { AdminNav, ConfirmButton, splitList, useLoad } from './admin.tsx';

const ROLE_NAME = /^[a-z][a-z0-9_-]{0,62}$/;
const MODES: readonly JoinMode[] = ['observer', 'peer'];

/** The form's text for a role's node labels: one label a line, `name=value, value`. */
function labelsText(labels: Record<string, string[]>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v.join(', ')}`).join('\n');
}
function joinText(rules: JoinRule[] | undefined): string {
  return (rules ?? []).map((r) => `${r.roles.join(', ')}: ${r.modes.join(', ')}`).join('\n');
}

/** Reads the form into a role, or says what is wrong with it. */
export function roleFromForm(f: { name: string; logins: string; labels: string; join: string }): RoleSpec | string {
  const name = f.name.trim();
  if (!ROLE_NAME.test(name)) return 'the name must start with a lower-case letter and have only lower-case letters, digits, "-" and "_"';
  const logins = splitList(f.logins);
  if (logins.length === 0) return 'give at least one login ({{internal.logins}} for the user\'s own logins)';
  const node_labels: Record<string, string[]> = {};
  for (const [i, line] of f.labels.split('\n').entries()) {
    if (!line.trim()) continue;
    const eq = line.indexOf('=');
    const k = line.slice(0, eq).trim();
    const values = splitList(line.slice(eq + 1));
    if (eq < 0 || !k || values.length === 0) return `node labels, line ${i + 1}: "${line.trim()}" is not NAME=VALUE[, VALUE…]`;
    node_labels[k] = [...(node_labels[k] ?? []), ...values];
  }
  if (Object.keys(node_labels).length === 0) return 'give at least one node label (*=* for every node)';
  const join_sessions: JoinRule[] = [];
  for (const [i, line] of f.join.split('\n').entries()) {
    if (!line.trim()) continue;
    const colon = line.indexOf(':');
    const roles = splitList(line.slice(0, colon));
    const modes = splitList(line.slice(colon + 1));
    if (colon < 0 || roles.length === 0 || modes.length === 0) return `joining sessions, line ${i + 1}: "${line.trim()}" is not ROLES: MODES`;
    const bad = modes.find((m) => !(MODES as readonly string[]).includes(m));
    if (bad) return `joining sessions, line ${i + 1}: "${bad}" is not a mode (${MODES.join(' or ')})`;
    join_sessions.push({ roles, modes: modes as JoinMode[] });
  }
  return { name, logins, node_labels, ...(join_sessions.length ? { join_sessions } : {}) };
}

export function AdminRoles() {
  const roles = useLoad<RoleSpec[]>('/webapi/admin/roles');
  const [editing, setEditing] = useState<string | undefined>(undefined);
  const [form, setForm] = useState({ name: '', logins: '', labels: '', join: '' });
  const [error, setError] = useState('');
  const [done, setDone] = useState('');
  const [busy, setBusy] = useState(false);

  const edit = (r: RoleSpec | undefined): void => {
    setEditing(r?.name);
    setForm(r ? { name: r.name, logins: r.logins.join(', '), labels: labelsText(r.node_labels), join: joinText(r.join_sessions) } : { name: '', logins: '', labels: '', join: '' });
    setError(''); setDone('');
    if (r) requestAnimationFrame(() => document.getElementById('role-logins')?.focus());
  };
  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    setDone('');
    const role = roleFromForm(form);
    if (typeof role === 'string') { setError(role); return; }
    setBusy(true);
    try {
      await api('PUT', `/webapi/admin/roles/${encodeURIComponent(role.name)}`, role);
      edit(undefined);
      setDone(`Role ${role.name} was ${editing ? 'saved' : 'created'}.`);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
      roles.reload();
    }
  };
  const remove = async (name: string): Promise<void> => {
    setError(''); setDone('');
    try {
      await api('DELETE', `/webapi/admin/roles/${encodeURIComponent(name)}`);
      setDone(`Role ${name} was removed.`);
      if (editing === name) edit(undefined);
    } catch (err) {
      setError(errorText(err));
    }
    roles.reload();
  };
  const field = (k: keyof typeof form) => ({ value: form[k], onInput: (e: { currentTarget: { value: string } }) => setForm({ ...form, [k]: e.currentTarget.value }) });

  return (
    <section aria-labelledby="admin-title" class="admin">
      <AdminNav current="roles" />
      <h1 id="admin-title">Roles</h1>
      <form class="card admin-form" onSubmit={(e) => void save(e)} aria-labelledby="role-form-title" noValidate>
        <h2 id="role-form-title">{editing ? `Edit role ${editing}` : 'New role'}</h2>
        <label>Name<input name="name" autoComplete="off" readOnly={Boolean(editing)} aria-describedby="role-name-help" {...field('name')} /></label>
        <p id="role-name-help" class="muted help">Lower-case letters, digits, "-" and "_", starting with a letter.</p>
        <label>Logins<input id="role-logins" name="logins" autoComplete="off" placeholder="{{internal.logins}}, ubuntu" aria-describedby="role-logins-help" {...field('logins')} /></label>
        <p id="role-logins-help" class="muted help">Unix logins on the nodes, separated by commas; {'{{internal.logins}}'} is the user's own.</p>
        <label>Node labels<textarea name="labels" rows={3} placeholder={'env=dev, staging\nteam=web'} aria-describedby="role-labels-help" {...field('labels')} /></label>
        <p id="role-labels-help" class="muted help">One label a line: NAME=VALUE[, VALUE…]; a node must match every line. *=* is every node.</p>
        <label>Joining sessions<textarea name="join" rows={2} placeholder="access: observer" aria-describedby="role-join-help" {...field('join')} /></label>
        <p id="role-join-help" class="muted help">Optional. One rule a line, ROLES: MODES, e.g. "access: observer, peer": whose live sessions holders may watch (observer) or type in (peer).</p>
        <div class="row">
          <button type="submit" disabled={busy}>{editing ? 'Save role' : 'Create role'}</button>
          {editing && <button type="button" class="secondary" onClick={() => edit(undefined)}>Cancel</button>}
        </div>
      </form>
      {error && <ErrorMessage>{error}</ErrorMessage>}
      {done && <SuccessMessage>{done}</SuccessMessage>}
      {roles.error && <ErrorMessage>{roles.error}</ErrorMessage>}
      <div aria-live="polite">{!roles.data ? <p>Loading…</p> : <p class="sr">{roles.data.length === 1 ? '1 role' : `${roles.data.length} roles`}</p>}</div>
      {roles.data && roles.data.length > 0 && (
        <table class="list">
          <thead><tr><th>Name</th><th>Logins</th><th>Node labels</th><th>Joining sessions</th><th><span class="sr">Actions</span></th></tr></thead>
          <tbody>
            {roles.data.map((r) => (
              <tr data-role={r.name}>
                <td data-label="Name">{r.name}{r.builtin && <span class="tag">built-in</span>}</td>
                <td class="mono" data-label="Logins">{r.logins.join(', ')}</td>
                <td class="mono" data-label="Node labels">{Object.entries(r.node_labels).map(([k, v]) => <div>{k}={v.join(', ')}</div>)}</td>
                <td data-label="Joining">{joinText(r.join_sessions).split('\n').filter(Boolean).map((l) => <div>{l}</div>)}{!r.join_sessions?.length && <span class="muted">none</span>}</td>
                <td class="actions">
                  {r.builtin ? <span class="muted">Read-only</span> : <>
                    <button type="button" class="secondary" onClick={() => edit(r)}>Edit<span class="sr"> {r.name}</span></button>
                    <ConfirmButton label="Remove" what={r.name} onConfirm={() => remove(r.name)} />
                  </>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

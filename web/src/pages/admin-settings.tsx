// Admin: the cluster settings (auth checks every value), and join tokens for proxies.
import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../api.ts';
import { ErrorMessage, SuccessMessage } from '../ui.tsx';
import type { ClusterSettings } from '../../../src/api/auth-types.ts';
import type { TokenResult } from '../../../src/api/types.ts';
import type { TokenInfo } from '../../../src/api/auth-types.ts';
import { AdminNav, ConfirmButton, CopyBlock, TTL_CHOICES, useLoad } from './admin.tsx';

const MIN = 60_000;
const HOUR = 3_600_000;

/** The form's fields: durations in the unit shown next to them. */
interface SettingsForm {
  second_factor: string; session_recording: string; record_input: boolean; max_session_ttl: string;
  lockout_attempts: string; lockout_window: string; lockout_duration: string; allow_unregistered: string;
}

function toForm(s: ClusterSettings): SettingsForm {
  return {
    second_factor: s.second_factor, session_recording: s.session_recording, record_input: s.record_input,
    max_session_ttl: String(s.max_session_ttl / HOUR), lockout_attempts: String(s.lockout_attempts),
    lockout_window: String(s.lockout_window / MIN), lockout_duration: String(s.lockout_duration / MIN),
    allow_unregistered: s.allow_unregistered.join('\n'),
  };
}

/** The changed settings, or what is wrong with the form. */
function changes(f: SettingsForm, was: ClusterSettings): Partial<ClusterSettings> | string {
  const num = (text: string, what: string, unit: number): number | string => {
    const n = Number(text);
    return text.trim() !== '' && Number.isFinite(n) && n > 0 ? Math.round(n * unit) : `${what} must be a number above zero`;
  };
  const next: Record<string, unknown> = {
    second_factor: f.second_factor, session_recording: f.session_recording, record_input: f.record_input,
    max_session_ttl: num(f.max_session_ttl, 'the longest certificate', HOUR),
    lockout_attempts: num(f.lockout_attempts, 'failed logins before lockout', 1),
    lockout_window: num(f.lockout_window, 'the lockout window', MIN),
    lockout_duration: num(f.lockout_duration, 'the lockout duration', MIN),
    allow_unregistered: f.allow_unregistered.split(/[\n,]/).map((s) => s.trim()).filter(Boolean),
  };
  const bad = Object.values(next).find((v) => typeof v === 'string' && v.includes('must be'));
  if (typeof bad === 'string') return bad;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(next)) if (JSON.stringify(v) !== JSON.stringify(was[k as keyof ClusterSettings])) out[k] = v;
  return out as Partial<ClusterSettings>;
}

export function AdminSettings() {
  const settings = useLoad<ClusterSettings>('/webapi/admin/settings');
  const [form, setForm] = useState<SettingsForm | undefined>();
  const [error, setError] = useState('');
  const [done, setDone] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => { if (settings.data) setForm(toForm(settings.data)); }, [settings.data]);

  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (!form || !settings.data) return;
    setDone('');
    const patch = changes(form, settings.data);
    if (typeof patch === 'string') { setError(patch); return; }
    if (Object.keys(patch).length === 0) { setError(''); setDone('Nothing changed.'); return; }
    setBusy(true);
    try {
      await api('PUT', '/webapi/admin/settings', patch);
      setError(''); setDone(`Saved: ${Object.keys(patch).join(', ')}.`);
      settings.reload();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  const text = (k: Exclude<keyof SettingsForm, 'record_input'>) => ({ name: k, value: form?.[k] ?? '', onInput: (e: { currentTarget: { value: string } }) => form && setForm({ ...form, [k]: e.currentTarget.value }) });

  return (
    <section aria-labelledby="admin-title" class="admin">
      <AdminNav current="settings" />
      <h1 id="admin-title">Settings</h1>
      {settings.error && <ErrorMessage>{settings.error}</ErrorMessage>}
      {!form ? <p role="status">Loading…</p> : (
        <form class="card admin-form" onSubmit={(e) => void save(e)} aria-label="Cluster settings" noValidate>
          <fieldset>
            <legend>Sessions</legend>
            <label>Session recording<select {...text('session_recording')} aria-describedby="recording-help" onChange={(e) => setForm({ ...form, session_recording: e.currentTarget.value })}>
              <option value="off">Off</option>
              <option value="proxy">At the proxy</option>
            </select></label>
            <p id="recording-help" class="muted help">At the proxy, every SSH session is recorded; off, nodes are reached through a tunnel and nothing is recorded.</p>
            <label class="check"><input type="checkbox" name="record_input" checked={form.record_input} aria-describedby="record-input-help" onChange={(e) => setForm({ ...form, record_input: e.currentTarget.checked })} />Record what users type</label>
            <p id="record-input-help" class="muted help">Off by default: keystrokes hold passwords typed at prompts.</p>
            <label>Longest certificate (hours)<input type="number" min="0.1" step="any" inputMode="decimal" {...text('max_session_ttl')} /></label>
          </fieldset>
          <fieldset>
            <legend>Logins</legend>
            <label>Second factor<select {...text('second_factor')} onChange={(e) => setForm({ ...form, second_factor: e.currentTarget.value })}>
              <option value="otp">Authenticator app code (TOTP)</option>
              <option value="off">None: password only</option>
            </select></label>
            <label>Failed logins before lockout<input type="number" min="1" step="1" inputMode="numeric" {...text('lockout_attempts')} /></label>
            <label>Counted within (minutes)<input type="number" min="1" step="any" inputMode="decimal" {...text('lockout_window')} /></label>
            <label>Locked for (minutes)<input type="number" min="1" step="any" inputMode="decimal" {...text('lockout_duration')} /></label>
          </fieldset>
          <fieldset>
            <legend>Unregistered hosts</legend>
            <label>Hosts the proxy may reach without a registered node<textarea rows={3} class="mono" placeholder={'*.dev.example.com\n10.0.0.0/8'} aria-describedby="allow-help" {...text('allow_unregistered')} /></label>
            <p id="allow-help" class="muted help">One host glob or CIDR a line; empty allows none.</p>
          </fieldset>
          <div><button type="submit" disabled={busy}>Save settings</button></div>
        </form>
      )}
      {error && <ErrorMessage>{error}</ErrorMessage>}
      {done && <SuccessMessage>{done}</SuccessMessage>}
    </section>
  );
}

export function AdminTokens() {
  const tokens = useLoad<TokenInfo[]>('/webapi/admin/tokens');
  const [removed, setRemoved] = useState('');
  const [ttl, setTtl] = useState(TTL_CHOICES[0][0]);
  const [token, setToken] = useState<TokenResult | undefined>();
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    try {
      setToken(await api<TokenResult>('POST', '/webapi/admin/tokens', { type: 'proxy', ttlMs: ttl }));
      setError(''); setRemoved('');
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
      tokens.reload();
    }
  };
  const remove = async (t: TokenInfo): Promise<void> => {
    try {
      await api('DELETE', `/webapi/admin/tokens/${encodeURIComponent(t.id)}`);
      setError(''); setToken(undefined); setRemoved(`The join token ${t.id} was removed: no proxy can join with it.`);
    } catch (err) {
      setError(errorText(err));
    } finally {
      tokens.reload();
    }
  };
  return (
    <section aria-labelledby="admin-title" class="admin">
      <AdminNav current="tokens" />
      <h1 id="admin-title">Join tokens</h1>
      <form class="card admin-form" onSubmit={(e) => void create(e)} aria-labelledby="token-form-title">
        <h2 id="token-form-title">A token for a new proxy</h2>
        <p class="muted">A proxy started elsewhere joins the cluster with it, once, before it expires.</p>
        <label>Valid for<select name="ttl" value={String(ttl)} onChange={(e) => setTtl(Number(e.currentTarget.value))}>
          {TTL_CHOICES.map(([ms, t]) => <option value={String(ms)}>{t}</option>)}
        </select></label>
        <div><button type="submit" disabled={busy}>Create token</button></div>
      </form>
      {error && <ErrorMessage>{error}</ErrorMessage>}
      {token && (
        <div class="card wide" data-testid="token-result">
          <SuccessMessage>A join token was made; it is valid until {new Date(token.expiresAt).toLocaleString()} and is shown only now.</SuccessMessage>
          <CopyBlock id="token-value" label="Join token" value={token.token} testid="join-token" />
          <p class="muted">Start the new proxy with this command, with the auth server's address for AUTH_HOST:PORT and the cluster's CA pin (<code>postern tokens add</code> on the auth server prints it) for CA_PIN.</p>
          <CopyBlock id="token-cmd" label="Command for the new proxy" value={`postern serve --roles proxy --auth-server AUTH_HOST:PORT --join-token ${token.token} --ca-pin CA_PIN`} />
        </div>
      )}
      {removed && <SuccessMessage>{removed}</SuccessMessage>}
      <h2>Tokens not yet expired</h2>
      {tokens.error && <ErrorMessage>{tokens.error}</ErrorMessage>}
      <div aria-live="polite">{!tokens.data ? <p>Loading…</p> : tokens.data.length === 0 ? <p class="muted">No join tokens.</p> : <p class="sr">{tokens.data.length === 1 ? '1 token' : `${tokens.data.length} tokens`}</p>}</div>
      {tokens.data && tokens.data.length > 0 && (
        <table class="list">
          <thead><tr><th>ID</th><th>Type</th><th>Created</th><th>Expires</th><th><span class="sr">Actions</span></th></tr></thead>
          <tbody>
            {tokens.data.map((t) => (
              <tr data-token={t.id}>
                <td class="mono" data-label="ID">{t.id}</td>
                <td data-label="Type">{t.type}</td>
                <td data-label="Created">{new Date(t.createdAt).toLocaleString()}</td>
                <td data-label="Expires">{new Date(t.expiresAt).toLocaleString()}</td>
                <td class="actions"><ConfirmButton label="Remove" what={`token ${t.id}`} onConfirm={() => remove(t)} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

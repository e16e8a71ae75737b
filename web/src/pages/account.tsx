// The account: change the password, re-enrol TOTP, log out.
import { ErrorMessage, Secret, SuccessMessage } from '../ui.tsx';
import { useState } from 'preact/hooks';
import { api, errorText } from '../api.ts';
import type { Me } from '../api.ts';
import { QrImage } from './invite.tsx';

/** Focuses an element when it appears (a stable ref callback, so it runs once per mount). */
function focusOnMount(el: HTMLElement | null): void {
  el?.focus();
}

export function Account(props: { me: Me; onLogout: () => void }) {
  const [current, setCurrent] = useState('');
  const [otp, setOtp] = useState('');
  const [next, setNext] = useState('');
  const [msg, setMsg] = useState('');
  const [err, setErr] = useState('');
  const [enrol, setEnrol] = useState<{ enrolId: string; totpSecret: string; otpauthUri: string } | undefined>();
  const [newCode, setNewCode] = useState('');
  const run = async (fn: () => Promise<void>): Promise<void> => {
    setMsg(''); setErr('');
    try { await fn(); } catch (e) { setErr(errorText(e)); }
  };
  return (
    <section aria-labelledby="account-title" class="account">
      <h1 id="account-title">Account: {props.me.user}</h1>
      <p class="muted">Roles: {props.me.roles.join(', ')} · Logins: {props.me.logins.join(', ')} · Session until {new Date(props.me.expiresAt).toLocaleString()}</p>
      <div aria-live="polite">{msg && <SuccessMessage>{msg}</SuccessMessage>}</div>
      {err && <ErrorMessage>{err}</ErrorMessage>}
      <form class="card" onSubmit={(e) => { e.preventDefault(); void run(async () => {
        await api('POST', '/webapi/account/password', { currentPassword: current, ...(otp ? { otp } : {}), newPassword: next });
        setMsg('Your password is changed.'); setCurrent(''); setOtp(''); setNext('');
      }); }}>
        <h2>Password and second factor</h2>
        <p class="muted">Both changes need your current password and a current code.</p>
        <label>Current password<input name="currentPassword" type="password" autocomplete="current-password" required value={current} onInput={(e) => setCurrent(e.currentTarget.value)} /></label>
        <label>Current code<input name="otp" inputMode="numeric" maxLength={6} value={otp} onInput={(e) => setOtp(e.currentTarget.value)} /></label>
        <label>New password<input name="newPassword" type="password" autocomplete="new-password" minLength={12} value={next} onInput={(e) => setNext(e.currentTarget.value)} /></label>
        <div class="row">
          <button type="submit" disabled={!next}>Change password</button>
          <button type="button" onClick={() => void run(async () => {
            setEnrol(await api('POST', '/webapi/account/totp', { currentPassword: current, ...(otp ? { otp } : {}) }));
          })}>Enrol a new authenticator</button>
        </div>
      </form>
      {enrol && <form class="card" onSubmit={(e) => { e.preventDefault(); void run(async () => {
        await api('PUT', '/webapi/account/totp', { enrolId: enrol.enrolId, otp: newCode });
        setEnrol(undefined); setNewCode(''); setMsg('Your new authenticator is enrolled; the old one no longer works.');
      }); }}>
        {/* A keyboard or screen-reader user lands on the new card, not back at the top of the form. */}
        <h2 id="enrol-title" tabIndex={-1} ref={focusOnMount}>New authenticator</h2>
        <QrImage uri={enrol.otpauthUri} />
        <Secret value={enrol.totpSecret} />
        <label>Code of the new entry<input name="newCode" inputMode="numeric" pattern="[0-9]{6}" maxLength={6} required value={newCode} onInput={(e) => setNewCode(e.currentTarget.value)} /></label>
        <button type="submit">Confirm</button>
      </form>}
      <button type="button" onClick={props.onLogout}>Log out</button>
    </section>
  );
}

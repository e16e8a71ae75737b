// Log in: user, password and the TOTP code; the proxy sets the session cookie.
import { ErrorMessage, InfoMessage } from '../ui.tsx';
import { useState } from 'preact/hooks';
import { api, errorText } from '../api.ts';
import type { Me } from '../api.ts';

export function Login(props: { notice?: string; onLogin: (me: Me) => void }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [otp, setOtp] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      props.onLogin(await api<Me>('POST', '/webapi/sessions/web', { user, password, ...(otp ? { otp } : {}) }));
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="center">
      <form class="card" onSubmit={(e) => void submit(e)} aria-labelledby="login-title">
        <h1 id="login-title">Log in to Postern</h1>
        <div aria-live="polite">{props.notice && <InfoMessage>{props.notice}</InfoMessage>}</div>
        <label>User<input name="user" autocomplete="username" required value={user} onInput={(e) => setUser(e.currentTarget.value)} /></label>
        <label>Password<input name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} /></label>
        <label>Code from your authenticator app<input name="otp" inputMode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxLength={6} value={otp} onInput={(e) => setOtp(e.currentTarget.value)} /></label>
        {error && <ErrorMessage>{error}</ErrorMessage>}
        <button type="submit" disabled={busy}>{busy ? 'Logging in…' : 'Log in'}</button>
      </form>
    </main>
  );
}

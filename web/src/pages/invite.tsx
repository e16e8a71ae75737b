// Sign up from an invite link: a password, TOTP enrolment with a QR code (and the secret as text), a code to confirm.
import { ErrorMessage, Secret, SuccessMessage } from '../ui.tsx';
import { useEffect, useState } from 'preact/hooks';
import QRCode from 'qrcode';
import { api, errorText } from '../api.ts';
import { navigate } from '../router.ts';
import type { InviteInfo } from '../../../src/api/types.ts';

/** The QR code of an otpauth:// URI, as an image. */
export function QrImage(props: { uri: string }) {
  const [src, setSrc] = useState('');
  useEffect(() => { void QRCode.toDataURL(props.uri, { margin: 1, width: 200 }).then(setSrc); }, [props.uri]);
  return src ? <img class="qr" src={src} width={200} height={200} alt="QR code for your authenticator app" /> : null;
}

export function Invite(props: { token: string }) {
  const [info, setInfo] = useState<InviteInfo | undefined>();
  const [error, setError] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [otp, setOtp] = useState('');
  const [done, setDone] = useState(false);
  useEffect(() => { api<InviteInfo>('GET', `/webapi/invites/${encodeURIComponent(props.token)}`).then(setInfo, (err) => setError(errorText(err))); }, [props.token]);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (password !== confirm) { setError('The two passwords differ.'); return; }
    setError('');
    try {
      await api('POST', `/webapi/invites/${encodeURIComponent(props.token)}`, { password, ...(info?.totpSecret ? { totpSecret: info.totpSecret, otp } : {}) });
      setDone(true);
    } catch (err) {
      setError(errorText(err));
    }
  };
  if (done) {
    return (
      <main class="center"><section class="card"><h1>Welcome, {info?.user}</h1><SuccessMessage>Your account is ready.</SuccessMessage>
        <button type="button" onClick={() => navigate('login')}>Log in</button></section></main>
    );
  }
  return (
    <main class="center">
      <form class="card" onSubmit={(e) => void submit(e)} aria-labelledby="invite-title">
        <h1 id="invite-title">Sign up{info ? ` as ${info.user}` : ''}</h1>
        {!info && !error && <p role="status">Loading the invitation…</p>}
        {info && <>
          <p class="muted">This invitation expires {new Date(info.expiresAt).toLocaleString()}.</p>
          <label>New password<input name="password" type="password" autocomplete="new-password" required minLength={12} value={password} onInput={(e) => setPassword(e.currentTarget.value)} /></label>
          <label>Repeat it<input name="confirm" type="password" autocomplete="new-password" required value={confirm} onInput={(e) => setConfirm(e.currentTarget.value)} /></label>
          {info.totpSecret && info.otpauthUri && <fieldset>
            <legend>Second factor</legend>
            <p>Scan this with your authenticator app, or type the secret.</p>
            <QrImage uri={info.otpauthUri} />
            <Secret value={info.totpSecret} testid="totp-secret" />
            <label>Code the app shows<input name="otp" inputMode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxLength={6} required value={otp} onInput={(e) => setOtp(e.currentTarget.value)} /></label>
          </fieldset>}
          <button type="submit">Create my account</button>
        </>}
        {error && <ErrorMessage>{error}</ErrorMessage>}
      </form>
    </main>
  );
}

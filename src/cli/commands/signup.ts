/** `postern signup INVITE_URL`: accept an invite: set a password and enrol TOTP. */
import type { Command } from 'commander';
import QRCode from 'qrcode';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { UsageError, ValidationError } from '../../core/errors.ts';
import { isPin } from '../../core/tls-pin.ts';
import { escapeControl, formatHostPort } from '../../core/text.ts';
import { askSecret, readSecretStdin } from '../prompt.ts';
import { out, colours } from '../output.ts';

/** Options of `postern signup`. */
export interface SignupOptions {
  passwordStdin?: boolean;
  totpSecret?: string;
  otp?: string;
  caPin?: string;
  insecure?: boolean;
}

/** Splits an invite URL into the proxy address and the token. */
export function parseInviteUrl(text: string): { host: string; port: number; token: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`"${text}" is not an invite link`, { hint: 'Pass the whole link an admin gave you, e.g. https://proxy.example.com:3080/web/invite/…' });
  }
  const m = /^\/web\/invite\/([A-Za-z0-9_-]+)\/?$/.exec(url.pathname);
  if (url.protocol !== 'https:' || !m) throw new UsageError(`"${text}" is not an invite link`, { hint: 'An invite link looks like https://HOST:3080/web/invite/TOKEN' });
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 443), token: m[1] };
}

/** The otpauth:// URI for a secret. */
function otpauthUri(secret: string, issuer: string, user: string): string {
  const label = encodeURIComponent(`${issuer}:${user}`);
  return `otpauth://totp/${label}?issuer=${encodeURIComponent(issuer)}&secret=${secret}&algorithm=SHA1&digits=6&period=30`;
}

/** Accepts an invite. */
export async function runSignup(inviteUrl: string, opts: SignupOptions, deps: Deps): Promise<void> {
  const { host, port, token } = parseInviteUrl(inviteUrl);
  if (opts.caPin && !isPin(opts.caPin)) throw new UsageError(`invalid --ca-pin "${opts.caPin}"`);
  const web = await deps.clients.web({ host, port, caPin: opts.caPin, insecure: opts.insecure });
  try {
    const invite = await web.getInvite(token);
    const ping = await web.ping();
    const c = colours(deps);
    out(deps, `Signing up ${c.bold(escapeControl(invite.user))} on cluster ${escapeControl(ping.clusterName)} (the invite expires at ${invite.expiresAt}).`);
    let password: string;
    if (opts.passwordStdin) {
      password = await readSecretStdin(deps);
    } else {
      password = await askSecret(deps, 'New password (at least 12 characters)', '--password-stdin');
      const again = await askSecret(deps, 'The same password again', '--password-stdin');
      if (again !== password) throw new ValidationError('the two passwords differ', { hint: 'Run the command again and type the same password twice' });
    }
    let totpSecret: string | undefined;
    let otp: string | undefined;
    if (invite.secondFactor === 'otp') {
      totpSecret = (opts.totpSecret ?? invite.totpSecret ?? '').replace(/\s/g, '').toUpperCase();
      if (!totpSecret) throw new ValidationError('the server proposed no TOTP secret', { hint: 'Pass one with --totp-secret BASE32' });
      const uri = opts.totpSecret ? otpauthUri(totpSecret, ping.clusterName, invite.user) : invite.otpauthUri ?? otpauthUri(totpSecret, ping.clusterName, invite.user);
      out(deps);
      out(deps, 'Add this account to your authenticator app: scan the QR code, or enter the secret.');
      out(deps, await QRCode.toString(uri, { type: 'terminal', small: true }));
      out(deps, `  Secret: ${totpSecret}`);
      out(deps, `  URI:    ${escapeControl(uri)}`);
      out(deps);
      otp = opts.otp ?? await askSecret(deps, 'The current code from the app', '--otp CODE');
    }
    const r = await web.acceptInvite(token, { password, ...(totpSecret ? { totpSecret } : {}), ...(otp ? { otp: otp.trim() } : {}) });
    out(deps, `${c.green('>')} Signed up as ${escapeControl(r.user)}. Log in with:`);
    const pin = opts.caPin ? ` --ca-pin ${opts.caPin}` : opts.insecure ? ' --insecure' : '';
    out(deps, `  postern login --proxy ${formatHostPort(host, port)} --user ${escapeControl(r.user)}${pin}`);
  } finally {
    await web.close();
  }
}

/** Registers `postern signup`. */
export function registerSignup(program: Command, deps: Deps, _state: RunState): void {
  program.command('signup').description('accept an invite: set a password and enrol a second factor')
    .argument('<invite-url>', 'the invite link an admin gave you')
    .option('--password-stdin', 'read the new password from standard input')
    .option('--totp-secret <base32>', 'use this TOTP secret instead of the one the server proposes')
    .option('--otp <code>', 'the current code from the authenticator app')
    .option('--ca-pin <pin>', 'trust the proxy by the cluster CA pin (sha256:…)')
    .option('--insecure', 'do not verify the proxy\'s TLS certificate (test clusters only)')
    .action((url: string, opts: SignupOptions) => runSignup(url, opts, deps));
}

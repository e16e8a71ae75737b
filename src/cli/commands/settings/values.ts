/** The cluster settings (second factor, lockout, session recording, ...): their names, values and text. */
import { formatDuration, parseDuration } from '../../../core/durations.ts';
import { UsageError } from '../../../core/errors.ts';
import type { ClusterSettings } from '../../../api/auth-types.ts';
import { didYouMean } from '../../suggest.ts';

const DURATIONS = new Set(['max_session_ttl', 'lockout_window', 'lockout_duration']);

/** The settings `set` knows, and what their values look like. */
export const SETTING_KEYS: Record<keyof ClusterSettings, string> = {
  second_factor: 'otp | off',
  max_session_ttl: 'a duration, e.g. 12h',
  lockout_attempts: 'a whole number above 0',
  lockout_window: 'a duration, e.g. 30m',
  lockout_duration: 'a duration, e.g. 30m',
  login_rate_per_source: 'attempts per minute from one address, 0 for no limit',
  login_rate_per_user: 'attempts per minute for one user name, 0 for no limit',
  signed_rate_per_source: 'signed requests per minute from one address, 0 for no limit',
  signed_rate_per_user: 'signed requests per minute for one user, 0 for no limit',
  session_recording: 'off | proxy',
  record_input: 'true | false',
  allow_unregistered: 'host globs and CIDRs, comma-separated ("" for none)',
};

/** The warning shown when an admin turns recording proxy mode on. */
export const RECORDING_WARNING = 'warning: in recording proxy mode the proxy terminates SSH and signs in to nodes with the keys users forward to it (ssh -A) while their sessions run: the proxy holds more privilege. Users now need agent forwarding (postern ssh -A, ssh -A, ForwardAgent yes).';

/** Turns `KEY VALUE` into a settings patch; auth checks the value again. */
export function parseSetting(key: string, value: string): Partial<ClusterSettings> {
  if (!Object.hasOwn(SETTING_KEYS, key)) {
    const near = didYouMean(key, Object.keys(SETTING_KEYS));
    throw new UsageError(`unknown setting "${key}"`, { hint: `${near ? `${near} ` : ''}Settings: ${Object.keys(SETTING_KEYS).join(', ')}` });
  }
  const k = key as keyof ClusterSettings;
  if (DURATIONS.has(k)) return { [k]: parseDuration(value, k) };
  if (k === 'lockout_attempts' || k === 'login_rate_per_source' || k === 'login_rate_per_user' || k === 'signed_rate_per_source' || k === 'signed_rate_per_user') {
    const n = Number(value);
    if (!Number.isInteger(n) || n < (k === 'lockout_attempts' ? 1 : 0)) throw new UsageError(`invalid ${k} "${value}": ${SETTING_KEYS[k]}`);
    return { [k]: n };
  }
  if (k === 'record_input') {
    if (value !== 'true' && value !== 'false') throw new UsageError(`invalid ${k} "${value}": ${SETTING_KEYS[k]}`);
    return { record_input: value === 'true' };
  }
  if (k === 'allow_unregistered') return { allow_unregistered: value.split(',').map((v) => v.trim()).filter(Boolean) };
  return { [k]: value } as Partial<ClusterSettings>;
}

/** The settings as rows of [name, value] for a table. */
export function settingRows(s: ClusterSettings): string[][] {
  return (Object.keys(SETTING_KEYS) as Array<keyof ClusterSettings>).map((k) => {
    const v = s[k];
    return [k, DURATIONS.has(k) ? formatDuration(v as number) : Array.isArray(v) ? (v.join(', ') || '(none)') : String(v)];
  });
}

/** Cluster settings kept by auth (their type is the API's ClusterSettings): defaults, checks, storage. */
import type { Backend } from '../storage/backend.ts';
import { getJson, putJson } from '../storage/backend.ts';
import { isIP } from 'node:net';
import { ValidationError } from '../core/errors.ts';
import type { ClusterSettings } from '../api/auth-types.ts';

/** The defaults a new cluster starts with. */
export const DEFAULT_SETTINGS: ClusterSettings = {
  second_factor: 'otp',
  max_session_ttl: 30 * 3_600_000,
  lockout_attempts: 5,
  lockout_window: 30 * 60_000,
  lockout_duration: 30 * 60_000,
  login_rate_per_source: 60,
  login_rate_per_user: 20,
  signed_rate_per_source: 3000,
  signed_rate_per_user: 600,
  session_recording: 'off',
  record_input: false,
  allow_unregistered: [],
};

const KEY = 'cluster/settings';

/** Checks a partial settings object; throws a ValidationError that names the bad field. */
export function validateSettings(patch: Partial<ClusterSettings>): Partial<ClusterSettings> {
  const out: Partial<ClusterSettings> = {};
  for (const [k, v] of Object.entries(patch)) {
    switch (k) {
      case 'second_factor':
        if (v !== 'otp' && v !== 'off') throw new ValidationError(`second_factor must be "otp" or "off", not "${String(v)}"`);
        out.second_factor = v;
        break;
      case 'session_recording':
        if (v !== 'off' && v !== 'proxy') throw new ValidationError(`session_recording must be "off" or "proxy", not "${String(v)}"`);
        out.session_recording = v;
        break;
      case 'record_input':
        if (typeof v !== 'boolean') throw new ValidationError(`record_input must be true or false, not "${String(v)}"`);
        out.record_input = v;
        break;
      case 'max_session_ttl': case 'lockout_window': case 'lockout_duration': case 'lockout_attempts':
        if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ValidationError(`${k} must be a positive number`);
        out[k] = v;
        break;
      case 'login_rate_per_source': case 'login_rate_per_user': case 'signed_rate_per_source': case 'signed_rate_per_user':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 1_000_000) throw new ValidationError(`${k} must be a whole number per minute (0 for no limit)`);
        out[k] = v;
        break;
      case 'allow_unregistered':
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) throw new ValidationError('allow_unregistered must be a list of host globs or CIDRs');
        for (const p of v as string[]) {
          if (p.includes('/') && !validCidr(p)) throw new ValidationError(`allow_unregistered: "${p}" is not a valid CIDR`, { hint: 'e.g. 10.0.0.0/8 or fd00::/8' });
        }
        out.allow_unregistered = v as string[];
        break;
      default:
        throw new ValidationError(`unknown cluster setting "${k}"`, { hint: `Known settings: ${Object.keys(DEFAULT_SETTINGS).join(', ')}` });
    }
  }
  return out;
}

/** Reads the settings, filling defaults for anything not stored. */
export async function getSettings(backend: Backend): Promise<ClusterSettings> {
  return { ...DEFAULT_SETTINGS, ...((await getJson<Partial<ClusterSettings>>(backend, KEY)) ?? {}) };
}

/** Changes some settings and returns the result. */
export async function updateSettings(backend: Backend, patch: Partial<ClusterSettings>): Promise<ClusterSettings> {
  const next = { ...(await getSettings(backend)), ...validateSettings(patch) };
  await putJson(backend, KEY, next);
  return next;
}

/** True for `ADDRESS/BITS` with a prefix length that fits the address family. */
function validCidr(text: string): boolean {
  const m = /^(.+)\/(\d{1,3})$/.exec(text);
  if (!m) return false;
  const family = isIP(m[1]);
  return family !== 0 && Number(m[2]) <= (family === 4 ? 32 : 128);
}

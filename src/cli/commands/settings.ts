/** `postern settings`: the cluster's settings on auth (second factor, lockout, session recording, ...), for admins. */
import type { Command } from 'commander';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { withAdminClient } from '../admin.ts';
import { dataDirOption, formatOption } from '../options.ts';
import { out, outJson, info, table } from '../output.ts';
import { formatDuration, parseDuration } from '../../core/durations.ts';
import { UsageError } from '../../core/errors.ts';
import type { ClusterSettings } from '../../api/auth-types.ts';

/** Options of `postern settings show`. */
export interface SettingsShowOptions { format: 'text' | 'json'; dataDir?: string }

/** Options of `postern settings set`. */
export interface SettingsSetOptions { dataDir?: string }

const DURATIONS = new Set(['max_session_ttl', 'lockout_window', 'lockout_duration']);

/** The settings `set` knows, and what their values look like. */
export const SETTING_KEYS: Record<keyof ClusterSettings, string> = {
  second_factor: 'otp | off',
  max_session_ttl: 'a duration, e.g. 12h',
  lockout_attempts: 'a whole number above 0',
  lockout_window: 'a duration, e.g. 30m',
  lockout_duration: 'a duration, e.g. 30m',
  session_recording: 'off | proxy',
  record_input: 'true | false',
  allow_unregistered: 'host globs and CIDRs, comma-separated ("" for none)',
};

/** The warning shown when an admin turns recording proxy mode on. */
export const RECORDING_WARNING = 'warning: in recording proxy mode the proxy terminates SSH and signs in to nodes with the keys users forward to it (ssh -A) while their sessions run: the proxy holds more privilege. Users now need agent forwarding (postern ssh -A, ssh -A, ForwardAgent yes).';

/** Turns `KEY VALUE` into a settings patch; auth checks the value again. */
export function parseSetting(key: string, value: string): Partial<ClusterSettings> {
  if (!Object.hasOwn(SETTING_KEYS, key)) {
    throw new UsageError(`unknown setting "${key}"`, { hint: `Settings: ${Object.keys(SETTING_KEYS).join(', ')}` });
  }
  const k = key as keyof ClusterSettings;
  if (DURATIONS.has(k)) return { [k]: parseDuration(value, k) };
  if (k === 'lockout_attempts') {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`invalid ${k} "${value}": ${SETTING_KEYS[k]}`);
    return { lockout_attempts: n };
  }
  if (k === 'record_input') {
    if (value !== 'true' && value !== 'false') throw new UsageError(`invalid ${k} "${value}": ${SETTING_KEYS[k]}`);
    return { record_input: value === 'true' };
  }
  if (k === 'allow_unregistered') return { allow_unregistered: value.split(',').map((v) => v.trim()).filter(Boolean) };
  return { [k]: value } as Partial<ClusterSettings>;
}

function show(s: ClusterSettings): string[][] {
  return (Object.keys(SETTING_KEYS) as Array<keyof ClusterSettings>).map((k) => {
    const v = s[k];
    return [k, DURATIONS.has(k) ? formatDuration(v as number) : Array.isArray(v) ? (v.join(', ') || '(none)') : String(v)];
  });
}

/** Prints the settings. */
export async function runSettingsShow(opts: SettingsShowOptions, deps: Deps): Promise<void> {
  const s = await withAdminClient(opts.dataDir, deps, (auth) => auth.getSettings());
  if (opts.format === 'json') { outJson(deps, s); return; }
  out(deps, table(['Setting', 'Value'], show(s)));
}

/** Changes one setting and prints the result. */
export async function runSettingsSet(key: string, value: string, opts: SettingsSetOptions, deps: Deps): Promise<void> {
  const patch = parseSetting(key, value);
  const s = await withAdminClient(opts.dataDir, deps, (auth) => auth.updateSettings(patch));
  if (patch.session_recording === 'proxy') info(deps, RECORDING_WARNING);
  out(deps, table(['Setting', 'Value'], show(s).filter(([k]) => k === key)));
}

/** Registers `postern settings`. */
export function registerSettings(program: Command, deps: Deps, _state: RunState): void {
  const settings = program.command('settings').description('show or change the cluster\'s settings (on the auth server)');
  settings.command('show').description('print every cluster setting')
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action((opts: SettingsShowOptions) => runSettingsShow(opts, deps));
  settings.command('set').description('change one cluster setting; proxies pick it up within seconds')
    .argument('<key>', `one of: ${Object.keys(SETTING_KEYS).join(', ')}`)
    .argument('<value>', 'the new value')
    .addOption(dataDirOption())
    .addHelpText('after', `
Values:
${Object.entries(SETTING_KEYS).map(([k, v]) => `  ${k.padEnd(20)} ${v}`).join('\n')}

session_recording proxy: the proxy terminates SSH sessions and records them; it then signs in
to nodes with the agent users forward, so it holds more privilege, and users need agent
forwarding. The default is off.

Examples:
  postern settings set session_recording proxy
  postern settings set record_input false
  postern settings show --format json`)
    .action((key: string, value: string, opts: SettingsSetOptions) => runSettingsSet(key, value, opts, deps));
}

/** `postern settings set KEY VALUE`: changes one cluster setting. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption } from '../../options.ts';
import { out, info, table } from '../../output.ts';
import { parseSetting, RECORDING_WARNING, SETTING_KEYS, settingRows } from './values.ts';

/** Options of `postern settings set`. */
export interface SettingsSetOptions { dataDir?: string }

/** Changes one setting and prints the result. */
export async function runSettingsSet(key: string, value: string, opts: SettingsSetOptions, deps: Deps): Promise<void> {
  const patch = parseSetting(key, value);
  const s = await withAdminClient(opts.dataDir, deps, (auth) => auth.updateSettings(patch));
  if (patch.session_recording === 'proxy') info(deps, RECORDING_WARNING);
  out(deps, table(['Setting', 'Value'], settingRows(s).filter(([k]) => k === key)));
}

/** Registers `postern settings set`. */
export function registerSettingsSet(settings: Command, deps: Deps): void {
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

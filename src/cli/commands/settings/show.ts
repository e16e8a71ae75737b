/** `postern settings show`: prints every cluster setting. */
import type { Command } from 'commander';
import type { Deps } from '../../deps.ts';
import { withAdminClient } from '../../admin.ts';
import { dataDirOption, formatOption } from '../../options.ts';
import { out, outJson, table } from '../../output.ts';
import { settingRows } from './values.ts';

/** Options of `postern settings show`. */
export interface SettingsShowOptions { format: 'text' | 'json'; dataDir?: string }

/** Prints the settings. */
export async function runSettingsShow(opts: SettingsShowOptions, deps: Deps): Promise<void> {
  const s = await withAdminClient(opts.dataDir, deps, (auth) => auth.getSettings());
  if (opts.format === 'json') { outJson(deps, s); return; }
  out(deps, table(['Setting', 'Value'], settingRows(s)));
}

/** Registers `postern settings show`. */
export function registerSettingsShow(settings: Command, deps: Deps): void {
  settings.command('show').description('print every cluster setting')
    .addOption(formatOption(['text', 'json']))
    .addOption(dataDirOption())
    .action((opts: SettingsShowOptions) => runSettingsShow(opts, deps));
}

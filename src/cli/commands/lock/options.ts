/** What `lock`'s subcommands share. */
import type { Command } from 'commander';

/**
 * A subcommand's options with those that `lock` itself took: commander gives a flag that
 * both have (`--format`, `--data-dir`) to the parent, wherever it stands on the line.
 */
export function subcommandOptions<T extends object>(cmd: Command): T {
  const own = cmd.opts<Record<string, unknown>>();
  const parent = cmd.parent;
  if (!parent) return own as T;
  const merged: Record<string, unknown> = { ...own };
  for (const [k, v] of Object.entries(parent.opts<Record<string, unknown>>())) {
    if (k in own && cmd.getOptionValueSource(k) !== 'default' && cmd.getOptionValueSource(k) !== undefined) continue;
    const source = parent.getOptionValueSource(k);
    if (source === 'cli' || source === 'env') merged[k] = v;
  }
  return merged as T;
}

/** `postern play ID`: replays a session recording in the terminal, or prints it as text or as a .cast file. */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { withSignedWeb } from '../signed-web.ts';
import { formatOption } from '../options.ts';
import { info } from '../output.ts';
import { parseCast } from '../../api/asciicast.ts';
import { castTranscript, replayCast } from '../../client/cast-player.ts';
import { UsageError } from '../../core/errors.ts';
import { escapeControl } from '../../core/text.ts';

/** Options of `postern play`. */
export interface PlayOptions {
  speed: number;
  skipIdle?: boolean;
  format: 'pty' | 'text' | 'cast';
  proxy?: string;
}

/** With --skip-idle, no pause is longer than this (in recorded seconds). */
export const IDLE_LIMIT_SEC = 1;

const ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Parses --speed: a number above 0, at most 1000. */
export function parseSpeed(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !(n > 0) || n > 1000) {
    throw new UsageError(`invalid --speed "${text}": a number above 0, at most 1000`, { hint: 'e.g. --speed 2 plays twice as fast, --speed 0.5 half as fast' });
  }
  return n;
}

/** Fetches the recording through the proxy (as the logged-in user) and plays it. */
export async function runPlay(id: string, opts: PlayOptions, deps: Deps): Promise<void> {
  if (!ID_RE.test(id)) throw new UsageError(`invalid recording id "${escapeControl(id)}"`, { hint: 'See the ids of the recordings you may play with:  postern recordings ls' });
  const text = await withSignedWeb(opts.proxy, deps, (web, sign) => web.recordingCast(id, sign));
  if (opts.format === 'cast') { deps.io.stdout.write(text); return; }
  const cast = parseCast(text);
  if (opts.format === 'text') { deps.io.stdout.write(castTranscript(cast.events)); return; }
  const stdout = deps.io.stdout;
  if (stdout.isTTY && stdout.columns !== undefined && stdout.columns < cast.header.width) {
    info(deps, `note: recorded on a ${cast.header.width}x${cast.header.height} terminal; this one has ${stdout.columns} columns`);
  }
  await replayCast(cast.events, (data) => stdout.write(data), {
    speed: opts.speed,
    ...(opts.skipIdle ? { idleLimitSec: IDLE_LIMIT_SEC } : {}),
    onMarker: (label) => info(deps, `\r\n[${escapeControl(label)}]`),
  });
}

/** Registers `postern play`. */
export function registerPlay(program: Command, deps: Deps, _state: RunState): void {
  program.command('play').description('replay a session recording (yours, or any for an admin)')
    .argument('<id>', 'the recording, from  postern recordings ls')
    .addOption(new Option('--speed <n>', 'play faster (2) or slower (0.5)').argParser(parseSpeed).default(1))
    .option('--skip-idle', `shorten pauses to at most ${IDLE_LIMIT_SEC}s`)
    .addOption(formatOption(['pty', 'text', 'cast']))
    .option('--proxy <host[:port]>', 'the profile to use (default: the current one)')
    .addHelpText('after', `
Formats:
  pty    the session's output with its timing, to this terminal (default)
  text   the output as plain text, escape sequences removed: a readable transcript
  cast   the recording as an asciicast v2 file, for asciinema and its web player

Examples:
  postern play ID --speed 2 --skip-idle
  postern play ID --format text | less
  postern play ID --format cast > session.cast && asciinema play session.cast`)
    .action((id: string, opts: PlayOptions) => runPlay(id, opts, deps));
}

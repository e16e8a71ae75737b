/** Durations as users type them (`90s`, `30m`, `12h`, `1h30m`, `2d`) and as we print them. */
import { ValidationError } from './errors.ts';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The longest duration accepted: 100 years, far below where milliseconds stop being exact. */
export const MAX_DURATION_MS = 36_500 * 86_400_000;

/** Parses `1h30m`-style text into milliseconds; throws a ValidationError naming the flag. */
export function parseDuration(text: string, what = 'duration'): number {
  const trimmed = text.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(trimmed)) !== null) {
    total += Number(m[1]) * UNIT_MS[m[2]];
    matched = re.lastIndex;
  }
  // Under half a millisecond rounds to none (found by fuzzing: "0.3ms" gave 0).
  if (trimmed === '' || matched !== trimmed.length || !(Math.round(total) > 0)) {
    throw new ValidationError(`invalid ${what} "${text}"`, { hint: 'Use a number with a unit, e.g. 30m, 12h or 1h30m' });
  }
  // Found by fuzzing: "800000000d" or 400 digits gave an unsafe integer or Infinity.
  if (!(Math.round(total) <= MAX_DURATION_MS)) {
    throw new ValidationError(`${what} "${text}" is too long`, { hint: 'Use at most 100 years (36500d)' });
  }
  return Math.round(total);
}

/** Formats milliseconds compactly, largest units first: `11h59m`, `45s`. */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  const parts: string[] = [];
  let rest = Math.floor(ms / 1000);
  const d = Math.floor(rest / 86400); rest %= 86400;
  const h = Math.floor(rest / 3600); rest %= 3600;
  const m = Math.floor(rest / 60); const s = rest % 60;
  if (d) parts.push(`${d}d`);
  if (h) parts.push(`${h}h`);
  if (m) parts.push(`${m}m`);
  if (s && !d && !h) parts.push(`${s}s`);
  return parts.join('') || '0s';
}

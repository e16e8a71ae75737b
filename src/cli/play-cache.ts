/**
 * The ids of the last `postern recordings ls`, for shell completion of `postern play`:
 * $TSH_HOME/play-cache.json, laid out as the ls cache (src/client/ls-cache.ts) so the same
 * one-line sed reads it and completion never calls the network.
 */
import { join } from 'node:path';
import { ensurePrivateDir, writeFileAtomic } from '../core/fs.ts';

/** Where the ids are kept. */
export const playCachePath = (home: string): string => join(home, 'play-cache.json');

/** Writes the ids (newest first, at most 200); a failure is ignored: the cache only helps completion. */
export function writePlayCache(home: string, ids: string[], now: Date): void {
  try {
    ensurePrivateDir(home);
    const names = ids.filter((id) => /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id)).slice(0, 200);
    writeFileAtomic(playCachePath(home), JSON.stringify({ updated: now.toISOString(), names }, null, 2) + '\n', 0o600);
  } catch {
    // A read-only home must not fail the listing.
  }
}

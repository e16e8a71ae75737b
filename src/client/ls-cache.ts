/**
 * The completion cache: node names from the last `postern ls`, one file per proxy
 * (paths.ts: $TSH_HOME/ls-cache/<proxy>.json). Shell completions read it with a one-line
 * sed and never call the network, so the layout is fixed: pretty JSON where each name is
 * alone on its line, and no other line is a bare string.
 *
 *   {
 *     "proxy": "proxy.example.com",
 *     "cluster": "example.com",
 *     "updated": "2030-01-01T12:00:00.000Z",
 *     "names": [
 *       "web1",
 *       "web2"
 *     ]
 *   }
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ensurePrivateDir, writeFileAtomic } from '../core/fs.ts';
import { lsCachePath } from './paths.ts';

/** What the cache holds. */
export interface LsCache {
  proxy: string;
  cluster: string;
  updated: string;
  names: string[];
}

// A name a shell may offer: what node names are, nothing a completion script must quote.
const COMPLETABLE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/** Reads the cached names of a proxy; none when the file is missing or unreadable. */
export function readLsCache(home: string, proxyHost: string): string[] {
  const path = lsCachePath(home, proxyHost);
  if (!existsSync(path)) return [];
  try {
    const c = JSON.parse(readFileSync(path, 'utf8')) as Partial<LsCache>;
    return Array.isArray(c.names) ? c.names.filter((n): n is string => typeof n === 'string' && COMPLETABLE.test(n)) : [];
  } catch {
    return [];
  }
}

/**
 * Writes the names `ls` listed. A filtered listing (`complete: false`) adds to what is
 * cached, so `ls env=prod` does not forget the other nodes; a full one replaces it.
 */
export function writeLsCache(home: string, c: { proxy: string; cluster: string; names: string[]; complete: boolean; now: Date }): void {
  const path = lsCachePath(home, c.proxy);
  ensurePrivateDir(home);
  ensurePrivateDir(dirname(path));
  const fresh = c.names.filter((n) => COMPLETABLE.test(n));
  const names = [...new Set([...(c.complete ? [] : readLsCache(home, c.proxy)), ...fresh])].sort();
  const body: LsCache = { proxy: c.proxy, cluster: c.cluster, updated: c.now.toISOString(), names };
  writeFileAtomic(path, JSON.stringify(body, null, 2) + '\n', 0o600);
}

/** The sed expression completions use to list the names of a cache file (kept here so a test can run it). */
export const LS_CACHE_SED = String.raw`s/^ *"\([A-Za-z0-9][A-Za-z0-9._-]*\)",\{0,1\}$/\1/p`;

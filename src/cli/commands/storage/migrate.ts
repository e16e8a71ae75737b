/**
 * `postern storage migrate --from DATA_DIR --to postgres://…`: copies a whole cluster from
 * its SQLite file to an empty PostgreSQL database, so it can run with several auth servers
 * (docs/ha.md). Every key is copied with its value and expiry, the CAs and the cluster's
 * name included, so certificates issued before stay valid. Items already expired are left
 * behind. At the end both stores are read again and compared: the number of items and a
 * SHA-256 over every key, value and expiry must be equal, else the command fails.
 *
 * The auth server must be stopped while this runs (a write during the copy would be
 * missed); revisions are the target's own, as the backend contract allows.
 */
import type { Command } from 'commander';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Deps } from '../../deps.ts';
import type { RunState } from '../../run-state.ts';
import { ConfigError, PosternError } from '../../../core/errors.ts';
import type { Clock } from '../../../core/clock.ts';
import { systemClock } from '../../../core/clock.ts';
import { serverPaths } from '../../../core/server-paths.ts';
import type { AtomicOp, Backend, Item } from '../../../storage/backend.ts';
import { describeStorage, openBackend, parseStorageSpec } from '../../../storage/open.ts';
import { out, outJson } from '../../output.ts';
import { formatOption } from '../../options.ts';

/** Items read, and written, per round trip. */
const PAGE = 500;

/** What a migration did. */
export interface MigrateResult {
  /** Items copied. */
  items: number;
  /** Items left behind because they had expired. */
  expired: number;
  /** Items per first key segment (users, nodes, cas, audit, …). */
  byPrefix: Record<string, number>;
  /** SHA-256 of every key, value and expiry, in key order; equal on both sides. */
  checksum: string;
}

/** Every live item of a store, page by page in key order. */
async function* liveItems(backend: Backend, now: Date): AsyncGenerator<Item> {
  let after: string | undefined;
  for (;;) {
    const page = await backend.getRange('', { limit: PAGE, ...(after === undefined ? {} : { after }) });
    for (const item of page) if (!item.expires || item.expires > now) yield item;
    if (page.length < PAGE) return;
    after = page[page.length - 1].key;
  }
}

/** Counts and hashes a store's live items. */
async function summarise(backend: Backend, now: Date): Promise<{ items: number; checksum: string }> {
  const hash = createHash('sha256');
  let items = 0;
  for await (const item of liveItems(backend, now)) {
    items++;
    hash.update(`${item.key}\0${item.value}\0${item.expires ? item.expires.getTime() : ''}\n`);
  }
  return { items, checksum: hash.digest('hex') };
}

/**
 * Copies every live item of `source` into `target`, which must be empty, then checks
 * both hold the same items. Throws a PosternError when the target is not empty or the
 * check fails.
 */
export async function migrateStore(source: Backend, target: Backend, clock: Clock = systemClock): Promise<MigrateResult> {
  if ((await target.getRange('', { limit: 1 })).length > 0) {
    throw new PosternError('ERR_POSTERN_STORAGE_NOT_EMPTY', 'the target database is not empty', {
      exitCode: 1, hint: 'Migrate into a new, empty database (CREATE DATABASE …); nothing was written',
    });
  }
  // One moment for the whole copy, so an item expiring half-way is judged the same way on both sides.
  const now = clock.now();
  const byPrefix: Record<string, number> = {};
  let expired = 0;
  let batch: AtomicOp[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length > 0) await target.atomic(batch);
    batch = [];
  };
  let after: string | undefined;
  for (;;) {
    const page = await source.getRange('', { limit: PAGE, ...(after === undefined ? {} : { after }) });
    for (const item of page) {
      if (item.expires && item.expires <= now) { expired++; continue; }
      // create, not put: a key that appears in the target meanwhile is a second writer, and stops the copy.
      batch.push({ kind: 'create', key: item.key, value: item.value, ...(item.expires ? { expires: item.expires } : {}) });
      const prefix = item.key.split('/')[0];
      byPrefix[prefix] = (byPrefix[prefix] ?? 0) + 1;
    }
    await flush();
    if (page.length < PAGE) break;
    after = page[page.length - 1].key;
  }
  const [from, to] = await Promise.all([summarise(source, now), summarise(target, now)]);
  if (from.items !== to.items || from.checksum !== to.checksum) {
    throw new PosternError('ERR_POSTERN_MIGRATE_MISMATCH', `the copy differs from the source: ${from.items} items (sha256 ${from.checksum}) against ${to.items} (sha256 ${to.checksum})`, {
      exitCode: 1, hint: 'Was the auth server still running? Stop it, drop the target database, create it empty and migrate again',
    });
  }
  return { items: to.items, expired, byPrefix, checksum: to.checksum };
}

/** Registers `postern storage migrate`. */
export function registerStorageMigrate(storage: Command, deps: Deps, _state: RunState): void {
  storage.command('migrate').description('copy a whole cluster (CAs included) from its SQLite data directory to an empty PostgreSQL database')
    .requiredOption('--from <data-dir>', 'the data directory of the SQLite cluster (stop its auth server first)')
    .requiredOption('--to <url>', 'an empty PostgreSQL database: postgres://USER@HOST:PORT/DB?sslmode=verify-full')
    .addOption(formatOption(['text', 'json']))
    .action(async (opts: { from: string; to: string; format?: string }) => {
      const target = parseStorageSpec(opts.to, opts.from);
      if (target.kind !== 'postgres') throw new ConfigError('--to must be a PostgreSQL URL', { hint: 'postgres://USER@HOST:PORT/DB?sslmode=verify-full' });
      const dbFile = serverPaths(opts.from).database;
      if (!existsSync(dbFile)) {
        throw new ConfigError(`there is no cluster in ${opts.from} (no ${dbFile})`, { hint: 'Give the data directory of the SQLite auth server with --from' });
      }
      const source = await openBackend({ kind: 'sqlite', dataDir: opts.from }, { clock: deps.clock });
      try {
        const dest = await openBackend(target, { clock: deps.clock });
        try {
          const result = await migrateStore(source, dest, deps.clock);
          if (opts.format === 'json') {
            outJson(deps, { from: opts.from, to: describeStorage(target), ...result });
            return;
          }
          out(deps, `copied ${result.items} items from ${dbFile} to ${describeStorage(target)}`);
          for (const [prefix, n] of Object.entries(result.byPrefix)) out(deps, `  ${prefix.padEnd(18)} ${n}`);
          if (result.expired > 0) out(deps, `left behind ${result.expired} expired items`);
          out(deps, `verified: ${result.items} items on both sides, sha256 ${result.checksum}`);
          out(deps, `Next: start the auth servers with  postern serve --roles auth --storage '${describeStorage(target)}'`);
        } finally {
          await dest.close();
        }
      } finally {
        await source.close();
      }
    });
}

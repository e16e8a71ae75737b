/**
 * The identities of proxies that joined the cluster (`serve --roles proxy --join-token`):
 * auth keeps, per proxy name, the serial numbers of the TLS client certificates its joins
 * issued (`proxy-identities/<name>`; several proxies may share a name, e.g. on one host).
 * A call over the Auth API from a proxy identity is served only while its certificate is
 * on record and the name was not removed (`postern proxies rm`); so removal revokes at once
 * on every auth server (the record is in storage), and a renewal replaces the certificate
 * that asked for it.
 * Identities without a record (joined before records were kept, or the proxy inside
 * `serve`'s own process) are served as before.
 */
import type { Backend } from '../storage/backend.ts';
import { getJson, key, putJson } from '../storage/backend.ts';
import { AccessDeniedError, AlreadyExistsError, ConflictError, NotFoundError } from '../core/errors.ts';
import type { Identity } from '../api/auth-types.ts';

/** What auth keeps of one joined proxy. */
export interface ProxyIdentityRecord {
  name: string;
  /** The serials of the certificates its joins and renewals issued (upper-case hex, as node:crypto's X509Certificate writes them). */
  serials: string[];
  joinedAt: string;
  /** Set by `proxies rm`: no call of this identity is served any more. */
  revokedAt?: string;
}

const recordKey = (name: string): string => key('proxy-identities', name);

/**
 * Records a certificate just issued to `name`: added to those on record (a join), or in
 * place of `replaces` (a renewal). After `proxies rm`, a join starts a new record: the
 * revoked certificates stay refused. Safe under concurrent joins (compare-and-swap).
 */
export async function recordProxyIdentity(backend: Backend, name: string, serial: string, now: Date, replaces?: string): Promise<void> {
  const k = recordKey(name);
  const fresh = (): ProxyIdentityRecord => ({ name, serials: [serial.toUpperCase()], joinedAt: now.toISOString() });
  for (let attempt = 0; attempt < 20; attempt++) {
    const item = await backend.get(k);
    try {
      if (!item) { await backend.create(k, JSON.stringify(fresh())); return; }
      const rec = JSON.parse(item.value) as ProxyIdentityRecord;
      const next: ProxyIdentityRecord = rec.revokedAt ? fresh()
        : { ...rec, serials: [...rec.serials.filter((x) => x !== replaces?.toUpperCase()), serial.toUpperCase()] };
      await backend.compareAndSwap(k, item.revision, JSON.stringify(next));
      return;
    } catch (err) {
      if (!(err instanceof ConflictError || err instanceof AlreadyExistsError)) throw err;
    }
  }
  throw new ConflictError(`the identity record of proxy "${name}" kept changing; try again`);
}

/** How long one auth server reuses a record it read (a revocation on another server bites within it). */
export const IDENTITY_CHECK_MAX_AGE_MS = 1_000;

/** Records read recently, by proxy name: a proxy's calls (recording chunks…) do not each cost a read. */
export class ProxyIdentityCache {
  private readonly entries = new Map<string, { rec: ProxyIdentityRecord | undefined; at: number }>();

  async get(backend: Backend, name: string, now: number): Promise<ProxyIdentityRecord | undefined> {
    const hit = this.entries.get(name);
    if (hit && now - hit.at < IDENTITY_CHECK_MAX_AGE_MS) return hit.rec;
    const rec = await getJson<ProxyIdentityRecord>(backend, recordKey(name));
    if (this.entries.size > 10_000) this.entries.clear();
    this.entries.set(name, { rec, at: now });
    return rec;
  }

  /** Forgets a name (this server just changed its record). */
  forget(name: string): void {
    this.entries.delete(name);
  }
}

/** Throws AccessDeniedError (401) when a proxy identity was revoked or replaced by a later join. */
export async function checkProxyIdentity(backend: Backend, id: Identity, cache?: ProxyIdentityCache, now = Date.now()): Promise<void> {
  if (id.role !== 'proxy' || id.serial === undefined) return;
  let rec = cache ? await cache.get(backend, id.name, now) : await getJson<ProxyIdentityRecord>(backend, recordKey(id.name));
  // A certificate issued a moment ago (a join after a removal, elsewhere) may be newer than the cached record: read again before refusing.
  if (cache && rec && (rec.revokedAt || !rec.serials.includes(id.serial.toUpperCase()))) {
    cache.forget(id.name);
    rec = await cache.get(backend, id.name, now);
  }
  if (!rec) return;
  const hint = 'Join the cluster again with a new token:  postern tokens add --type proxy  (remove the proxy\'s identity.json first)';
  if (rec.revokedAt) throw new AccessDeniedError(`the identity of proxy "${id.name}" was revoked`, { status: 401, hint });
  if (!rec.serials.includes(id.serial.toUpperCase())) throw new AccessDeniedError(`the identity of proxy "${id.name}" was replaced or revoked`, { status: 401, hint });
}

/** Every joined proxy's record. */
export async function listProxyIdentities(backend: Backend): Promise<ProxyIdentityRecord[]> {
  return (await backend.getRange('proxy-identities')).map((i) => JSON.parse(i.value) as ProxyIdentityRecord);
}

/** Revokes a proxy's identity (keeping the record, so the old certificate stays refused). */
export async function revokeProxyIdentity(backend: Backend, name: string, now: Date): Promise<ProxyIdentityRecord | undefined> {
  const rec = await getJson<ProxyIdentityRecord>(backend, recordKey(name));
  if (!rec) return undefined;
  const next = { ...rec, revokedAt: now.toISOString() };
  await putJson(backend, recordKey(name), next);
  return next;
}

/** A NotFoundError for a proxy auth knows nothing of. */
export function noSuchProxy(name: string): NotFoundError {
  return new NotFoundError(`no proxy "${name}"`, { hint: 'List them with:  postern proxies ls' });
}

/**
 * The identities of proxies that joined the cluster (`serve --roles proxy --join-token`):
 * auth keeps, per proxy name, the serial number of the TLS client certificate its join
 * issued (`proxy-identities/<name>`). A call over the Auth API from a proxy identity is
 * served only while that certificate is the one on record and the proxy was not removed
 * (`postern proxies rm`); so removal revokes at once on every auth server (the record is in
 * storage), and a proxy that joins again under its name replaces the old certificate.
 * Identities without a record (joined before records were kept, or the proxy inside
 * `serve`'s own process) are served as before.
 */
import type { Backend } from '../storage/backend.ts';
import { getJson, key, putJson } from '../storage/backend.ts';
import { AccessDeniedError, NotFoundError } from '../core/errors.ts';
import type { Identity } from '../api/auth-types.ts';

/** What auth keeps of one joined proxy. */
export interface ProxyIdentityRecord {
  name: string;
  /** The serial of the certificate its last join issued (as node:crypto's X509Certificate writes it). */
  serial: string;
  joinedAt: string;
  /** Set by `proxies rm`: no call of this identity is served any more. */
  revokedAt?: string;
}

const recordKey = (name: string): string => key('proxy-identities', name);

/** Records the certificate a join just issued to `name` (replacing any earlier one). */
export async function recordProxyIdentity(backend: Backend, name: string, serial: string, now: Date): Promise<void> {
  await putJson(backend, recordKey(name), { name, serial: serial.toUpperCase(), joinedAt: now.toISOString() } satisfies ProxyIdentityRecord);
}

/** Throws AccessDeniedError (401) when a proxy identity was revoked or replaced by a later join. */
export async function checkProxyIdentity(backend: Backend, id: Identity): Promise<void> {
  if (id.role !== 'proxy' || id.serial === undefined) return;
  const rec = await getJson<ProxyIdentityRecord>(backend, recordKey(id.name));
  if (!rec) return;
  const hint = 'Join the cluster again with a new token:  postern tokens add --type proxy  (remove the proxy\'s identity.json first)';
  if (rec.revokedAt) throw new AccessDeniedError(`the identity of proxy "${id.name}" was revoked`, { status: 401, hint });
  if (rec.serial !== id.serial.toUpperCase()) throw new AccessDeniedError(`the identity of proxy "${id.name}" was replaced by a later join`, { status: 401, hint });
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

/**
 * Locks as auth keeps them: one item per lock under `locks/<id>`, with the storage's own
 * expiry when the lock has a TTL, so an expired lock is gone from every read on SQLite and
 * PostgreSQL alike (and across auth servers, which share the store). Which lock covers
 * what is the API's (src/api/locks.ts); this module stores, lists and checks.
 */
import { randomUUID } from 'node:crypto';
import type { Backend } from '../storage/backend.ts';
import { NotFoundError, ValidationError } from '../core/errors.ts';
import { findLock, LOCK_TARGET_KINDS, lockMessage, LockedError } from '../api/locks.ts';
import type { CreateLockRequest, LockInfo, LockSubject, LockTarget } from '../api/locks.ts';

/** The longest TTL a lock may have (ten years); without one it lasts until removed. */
export const MAX_LOCK_TTL_MS = 10 * 365 * 86_400_000;

/** The longest reason. */
const MAX_REASON = 1_000;

const PREFIX = 'locks/';
const lockKey = (id: string): string => `${PREFIX}${id}`;

/** The checks of each kind of target: users and logins as users.ts, roles as role-store.ts, nodes as node-registry.ts. */
const TARGET_RE: Record<(typeof LOCK_TARGET_KINDS)[number], { re: RegExp; what: string }> = {
  user: { re: /^[a-z_][a-z0-9_.-]{0,63}$/i, what: 'a user name such as alice' },
  role: { re: /^[a-z][a-z0-9_-]{0,62}$/, what: 'a role name such as dev' },
  login: { re: /^[a-z_][a-z0-9_.-]{0,31}\$?$/i, what: 'a Unix login such as root' },
  node: { re: /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i, what: 'a node name such as web1 (or a host name)' },
};

/** Checks a target: exactly one kind, with a well-formed value. */
export function checkLockTarget(t: unknown): LockTarget {
  if (typeof t !== 'object' || t === null) throw new ValidationError('a lock needs a target', { hint: 'Give one of --user, --role, --login or --node' });
  const given = LOCK_TARGET_KINDS.filter((k) => (t as Record<string, unknown>)[k] !== undefined);
  if (given.length !== 1) {
    throw new ValidationError(given.length === 0 ? 'a lock needs a target' : `a lock has one target, not ${given.join(' and ')}`, { hint: 'Give exactly one of --user, --role, --login or --node' });
  }
  const kind = given[0];
  const value = (t as Record<string, unknown>)[kind];
  if (typeof value !== 'string' || !TARGET_RE[kind].re.test(value)) {
    throw new ValidationError(`invalid ${kind} "${String(value)}" to lock`, { hint: `Give ${TARGET_RE[kind].what}` });
  }
  return { [kind]: kind === 'node' || kind === 'role' ? value.toLowerCase() : value };
}

/** Stores a new lock; checks target, reason and TTL. */
export async function createLock(backend: Backend, req: CreateLockRequest, createdBy: string, now: Date): Promise<LockInfo> {
  if (typeof req !== 'object' || req === null) throw new ValidationError('a lock request is required');
  const target = checkLockTarget(req.target);
  const reason = req.reason === undefined ? '' : req.reason;
  if (typeof reason !== 'string') throw new ValidationError('the reason must be text');
  if (reason.length > MAX_REASON) throw new ValidationError(`the reason is too long (at most ${MAX_REASON} characters)`);
  // The reason is shown to users on their terminals: no control characters in it.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(reason)) throw new ValidationError('the reason must be one line of text without control characters');
  let expires: Date | undefined;
  if (req.ttlMs !== undefined) {
    const ttl = Number(req.ttlMs);
    if (!Number.isFinite(ttl) || ttl < 1_000 || ttl > MAX_LOCK_TTL_MS) {
      throw new ValidationError('a lock ttl must be at least 1s and at most ten years', { hint: 'Give a duration such as --ttl 1h, or none for a lock until removed' });
    }
    expires = new Date(now.getTime() + ttl);
  }
  const lock: LockInfo = {
    id: randomUUID(), target, reason: reason.trim(), createdAt: now.toISOString(), createdBy,
    ...(expires ? { expiresAt: expires.toISOString() } : {}),
  };
  await backend.create(lockKey(lock.id), JSON.stringify(lock), expires ? { expires } : {});
  return lock;
}

/** The locks in force, oldest first. */
export async function listLocks(backend: Backend, now: Date): Promise<LockInfo[]> {
  return (await backend.getRange(PREFIX))
    .map((i) => JSON.parse(i.value) as LockInfo)
    .filter((l) => !l.expiresAt || Date.parse(l.expiresAt) > now.getTime())
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}

/**
 * Removes a lock named by its id or a prefix of it (at least 4 characters) that only it
 * has; returns it. NotFoundError when none matches, ValidationError when several do.
 */
export async function deleteLock(backend: Backend, idOrPrefix: unknown, now: Date): Promise<LockInfo> {
  const id = typeof idOrPrefix === 'string' ? idOrPrefix.trim().toLowerCase() : '';
  if (!/^[0-9a-f-]{4,36}$/.test(id)) throw new ValidationError(`invalid lock id "${String(idOrPrefix)}"`, { hint: 'Give the ID that  postern lock ls  shows' });
  const matches = (await listLocks(backend, now)).filter((l) => l.id.startsWith(id));
  if (matches.length === 0) throw new NotFoundError(`no lock with id ${id}`, { hint: 'List them with:  postern lock ls' });
  if (matches.length > 1) throw new ValidationError(`the id ${id} names ${matches.length} locks`, { hint: `Give more of it: ${matches.map((m) => m.id).join(', ')}` });
  if (!(await backend.delete(lockKey(matches[0].id)))) throw new NotFoundError(`no lock with id ${id}`, { hint: 'It expired or was removed meanwhile; list them with:  postern lock ls' });
  return matches[0];
}

/** The lock in force that covers a subject, if any. */
export async function lockFor(backend: Backend, subject: LockSubject, now: Date): Promise<LockInfo | undefined> {
  return findLock(await listLocks(backend, now), subject, now);
}

/** Throws LockedError (403, the lock's reason in the message) when a lock covers the subject. */
export async function refuseIfLocked(backend: Backend, subject: LockSubject, now: Date, options: { status?: number } = {}): Promise<void> {
  const lock = await lockFor(backend, subject, now);
  if (lock) throw new LockedError(lockMessage(lock), options);
}

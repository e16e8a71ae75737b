/**
 * Users: who they are, what logins and roles they have, their password hash and TOTP
 * secret, and the failed-login record that locks them.
 */
import type { Backend } from '../storage/backend.ts';
import { getJson } from '../storage/backend.ts';
import { AlreadyExistsError, NotFoundError, ValidationError } from '../core/errors.ts';
import type { UserInfo } from '../api/types.ts';

/** A user as stored. */
export interface UserRecord {
  name: string;
  logins: string[];
  roles: string[];
  createdAt: string;
  passwordHash?: string;
  totp?: { secret: string; lastCounter: number };
}

/** Failed logins of a name (kept for unknown names too, so a lock tells nothing). */
interface FailureRecord {
  failures: number[];
  lockedUntil?: number;
}

const userKey = (name: string): string => `users/${name}`;
const failKey = (name: string): string => `loginfail/${Buffer.from(name).toString('hex').slice(0, 200)}`;

const NAME_RE = /^[a-z_][a-z0-9_.-]{0,63}$/i;
const LOGIN_RE = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;

/** Checks a user name; throws a ValidationError that says what is allowed. */
export function checkUserName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new ValidationError(`invalid user name "${name}"`, { hint: 'Use letters, digits, ".", "_" and "-", starting with a letter, at most 64 characters' });
  }
}

/** Checks OS login names (certificate principals). */
export function checkLogins(logins: string[]): void {
  if (logins.length === 0) throw new ValidationError('a user needs at least one login', { hint: 'Pass --logins, e.g. --logins root,ubuntu' });
  for (const l of logins) {
    if (!LOGIN_RE.test(l)) throw new ValidationError(`invalid login "${l}"`, { hint: 'A login is a Unix user name such as ubuntu or root' });
  }
}

/** Reads a user, or undefined. */
export async function getUser(backend: Backend, name: string): Promise<UserRecord | undefined> {
  if (!NAME_RE.test(name)) return undefined;
  return getJson<UserRecord>(backend, userKey(name));
}

/** Creates a user; AlreadyExistsError when the name is taken. */
export async function createUser(backend: Backend, user: UserRecord): Promise<void> {
  checkUserName(user.name);
  checkLogins(user.logins);
  try {
    await backend.create(userKey(user.name), JSON.stringify(user));
  } catch (err) {
    if (err instanceof AlreadyExistsError) throw new AlreadyExistsError(`user "${user.name}" already exists`, { hint: `To send a new invite:  postern users reset ${user.name}` });
    throw err;
  }
}

/** Atomically changes a user with a function, retrying on concurrent writes. */
export async function modifyUser(backend: Backend, name: string, change: (u: UserRecord) => UserRecord): Promise<UserRecord> {
  for (let i = 0; i < 20; i++) {
    const item = await backend.get(userKey(name));
    if (!item) throw new NotFoundError(`user "${name}" does not exist`, { hint: 'List users with:  postern users ls' });
    const next = change(JSON.parse(item.value) as UserRecord);
    try {
      await backend.compareAndSwap(userKey(name), item.revision, JSON.stringify(next));
      return next;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_POSTERN_CONFLICT') throw err;
    }
  }
  throw new Error(`could not update user "${name}": too many concurrent changes`);
}

/** Deletes a user and what belongs to it; NotFoundError when there is none. */
export async function deleteUser(backend: Backend, name: string): Promise<void> {
  if (!(await backend.delete(userKey(name)))) throw new NotFoundError(`user "${name}" does not exist`, { hint: 'List users with:  postern users ls' });
  await backend.delete(failKey(name));
}

/** Every user, by name. */
export async function listUsers(backend: Backend): Promise<UserRecord[]> {
  return (await backend.getRange('users/')).map((i) => JSON.parse(i.value) as UserRecord);
}

/** The admin view of a user: no secrets. */
export async function userInfo(backend: Backend, u: UserRecord, now: Date): Promise<UserInfo> {
  const lock = await lockedUntil(backend, u.name, now);
  return {
    name: u.name,
    logins: u.logins,
    roles: u.roles,
    status: lock ? 'locked' : u.passwordHash ? 'active' : 'invited',
    createdAt: u.createdAt,
    ...(lock ? { lockedUntil: lock.toISOString() } : {}),
  };
}

/** When the name is locked until, or undefined when it is not locked now. */
export async function lockedUntil(backend: Backend, name: string, now: Date): Promise<Date | undefined> {
  const rec = await getJson<FailureRecord>(backend, failKey(name));
  if (rec?.lockedUntil && rec.lockedUntil > now.getTime()) return new Date(rec.lockedUntil);
  return undefined;
}

/**
 * Records a failed login; returns the lock time when this failure locked the name.
 * A compare-and-swap loop, so failures counted at the same moment by several auth servers
 * on one database all count (a plain read-then-put would lose one of two).
 */
export async function recordFailure(
  backend: Backend, name: string, now: Date, policy: { attempts: number; window: number; duration: number },
): Promise<Date | undefined> {
  const t = now.getTime();
  for (let attempt = 0; attempt < 50; attempt++) {
    const item = await backend.get(failKey(name));
    const rec = item ? (JSON.parse(item.value) as FailureRecord) : { failures: [] };
    const failures = [...rec.failures.filter((f) => f > t - policy.window), t];
    let until: number | undefined = rec.lockedUntil && rec.lockedUntil > t ? rec.lockedUntil : undefined;
    let locked: Date | undefined;
    if (!until && failures.length >= policy.attempts) {
      until = t + policy.duration;
      locked = new Date(until);
    }
    const next = JSON.stringify({ failures: until ? [] : failures, ...(until ? { lockedUntil: until } : {}) } satisfies FailureRecord);
    const opts = { expires: new Date(Math.max(t + policy.window, until ?? 0)) };
    try {
      if (item) await backend.compareAndSwap(failKey(name), item.revision, next, opts);
      else await backend.create(failKey(name), next, opts);
      return locked;
    } catch (err) {
      const code = (err as { code?: string }).code;
      // Another auth server wrote first: read again and count on top of its write.
      if (code !== 'ERR_POSTERN_CONFLICT' && code !== 'ERR_POSTERN_ALREADY_EXISTS' && code !== 'ERR_POSTERN_NOT_FOUND') throw err;
    }
  }
  throw new Error(`could not record a failed login of "${name}": too many concurrent changes`);
}

/** Forgets failed logins after a success or a reset. */
export async function clearFailures(backend: Backend, name: string): Promise<void> {
  await backend.delete(failKey(name));
}

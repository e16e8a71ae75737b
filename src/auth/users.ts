/**
 * Users: who they are, what logins and roles they have, their password hash and TOTP
 * secret, and the failed-login record that locks them.
 */
import { randomBytes } from 'node:crypto';
import type { Backend } from '../storage/backend.ts';
import { getJson } from '../storage/backend.ts';
import { AlreadyExistsError, ConflictError, NotFoundError, ValidationError } from '../core/errors.ts';
import type { UserInfo } from '../api/types.ts';

/** A user as stored. */
export interface UserRecord {
  name: string;
  logins: string[];
  roles: string[];
  createdAt: string;
  passwordHash?: string;
  totp?: { secret: string; lastCounter: number };
  /**
   * The account's generation: put in every certificate and web session issued to it, new on
   * `users reset` and on every `users add`, so what was issued before no longer passes
   * auth's checkAccount. Absent only on users stored before generations existed.
   */
  account?: string;
}

const userKey = (name: string): string => `users/${name}`;
/** Where the attempts of a name are kept (also for unknown names, so a lock tells nothing). */
const nameKey = (name: string): string => Buffer.from(name).toString('hex').slice(0, 200);
const slotPrefix = (name: string): string => `login_attempts/${nameKey(name)}`;
const slotKey = (name: string, k: number): string => `${slotPrefix(name)}/${k}`;
const lockKey = (name: string): string => `login_locks/${nameKey(name)}`;

/** A new account generation: what a certificate is bound to, changed by reset and removal. */
export function newAccountGeneration(): string {
  return randomBytes(12).toString('base64url');
}

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
  const rec: UserRecord = { ...user, account: user.account ?? newAccountGeneration() };
  try {
    await backend.create(userKey(user.name), JSON.stringify(rec));
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
  await clearFailures(backend, name);
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

/** The lockout policy: at most `attempts` password checks per `window`; a full window locks for `duration` (ms). */
export interface LockoutPolicy {
  attempts: number;
  window: number;
  duration: number;
}

interface SlotRecord { until: number }
interface LockRecord { until: number }

const isRace = (err: unknown): boolean => err instanceof ConflictError || err instanceof AlreadyExistsError;

/** When the name is locked until, or undefined when it is not locked now. */
export async function lockedUntil(backend: Backend, name: string, now: Date): Promise<Date | undefined> {
  const rec = await getJson<LockRecord>(backend, lockKey(name));
  if (rec && rec.until > now.getTime()) return new Date(rec.until);
  return undefined;
}

/**
 * Reserves one password check of a name before it runs, in storage, so that every auth
 * server sharing the database agrees: the name has `policy.attempts` slots, each taken by
 * an atomic create (or compare-and-swap of a stale one) and held for the window. With
 * every slot held, or a lock in place, the check does not run: the answer is the time the
 * name is locked until. A success releases all slots (clearFailures); a failure keeps its
 * slot, and the failure that finds every slot held locks the name (settleFailure).
 */
export async function reserveAttempt(backend: Backend, name: string, now: Date, policy: LockoutPolicy): Promise<{ locked?: Date }> {
  const t = now.getTime();
  const locked = await lockedUntil(backend, name, now);
  if (locked) return { locked };
  const value = JSON.stringify({ until: t + policy.window } satisfies SlotRecord);
  const expires = new Date(t + policy.window);
  let earliest = Infinity;
  for (let k = 0; k < policy.attempts; k++) {
    const item = await backend.get(slotKey(name, k));
    if (item) {
      const held = (JSON.parse(item.value) as SlotRecord).until;
      if (held > t) { earliest = Math.min(earliest, held); continue; }
    }
    try {
      if (item) await backend.compareAndSwap(slotKey(name, k), item.revision, value, { expires });
      else await backend.create(slotKey(name, k), value, { expires });
    } catch (err) {
      if (isRace(err)) continue; // another check took this slot first
      throw err;
    }
    // A failure may have locked the name (and freed the slots) since the first look: give the slot back.
    const lockedNow = await lockedUntil(backend, name, now);
    if (lockedNow) {
      await backend.delete(slotKey(name, k));
      return { locked: lockedNow };
    }
    return {};
  }
  return { locked: new Date(Number.isFinite(earliest) ? earliest : t + policy.window) };
}

/** Settles a failed check (its slot stays held); returns the lock time when this failure locked the name. */
export async function settleFailure(backend: Backend, name: string, now: Date, policy: LockoutPolicy): Promise<Date | undefined> {
  const t = now.getTime();
  const held = (await backend.getRange(slotPrefix(name))).filter((i) => (JSON.parse(i.value) as SlotRecord).until > t).length;
  if (held < policy.attempts) return undefined;
  const until = t + policy.duration;
  const item = await backend.get(lockKey(name));
  if (item && (JSON.parse(item.value) as LockRecord).until > t) return undefined; // locked already
  try {
    const value = JSON.stringify({ until } satisfies LockRecord);
    if (item) await backend.compareAndSwap(lockKey(name), item.revision, value, { expires: new Date(until) });
    else await backend.create(lockKey(name), value, { expires: new Date(until) });
  } catch (err) {
    if (isRace(err)) return undefined; // another failure locked it
    throw err;
  }
  // The lock is in place before the slots go, so no check slips in between (reserveAttempt looks again).
  await backend.deleteRange(slotPrefix(name));
  return new Date(until);
}

/** Forgets failed logins and the lock after a success, a reset or a removal. */
export async function clearFailures(backend: Backend, name: string): Promise<void> {
  await backend.deleteRange(slotPrefix(name));
  await backend.delete(lockKey(name));
}

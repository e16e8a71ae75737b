/**
 * Locks (`postern lock`, as Teleport's `tctl lock`): an admin stops one user, everyone
 * holding a role, one OS login or one node, with a reason and an optional expiry. Auth
 * keeps them (auth/locks.ts) and refuses logins, web sessions and dials they cover; every
 * proxy cuts the live connections they cover within seconds (proxy/live-conns.ts). This is
 * the contract both sides share: the shapes, which lock covers what, and the one refusal.
 */
import { PosternError } from '../core/errors.ts';

/** What a lock stops: exactly one of these. */
export interface LockTarget {
  user?: string;
  role?: string;
  login?: string;
  node?: string;
}

/** The kinds of target, in the order `lock ls` shows them. */
export const LOCK_TARGET_KINDS = ['user', 'role', 'login', 'node'] as const;

/** One kind of target. */
export type LockTargetKind = typeof LOCK_TARGET_KINDS[number];

/** A lock as auth keeps and lists it. */
export interface LockInfo {
  id: string;
  target: LockTarget;
  /** Why, as the admin gave it ('' for none); shown to the user it stops. */
  reason: string;
  createdAt: string;
  /** The admin who made it. */
  createdBy: string;
  /** When it stops being in force; absent for a lock until removed. */
  expiresAt?: string;
}

/** `createLock`'s argument. */
export interface CreateLockRequest {
  target: LockTarget;
  reason?: string;
  /** How long it is in force; until `lock rm` when absent. */
  ttlMs?: number;
}

/** What one connection or request is, as far as locks care. */
export interface LockSubject {
  user?: string;
  /** The user's roles (auth knows them; the proxy does not). */
  roles?: string[];
  /** The OS login, when known. */
  login?: string;
  /**
   * The certificate's logins, when the login itself is not known (`ssh -J` carries the
   * node's SSH end to end): a lock on any of them covers the connection, since the
   * certificate could log in as that one.
   */
  principals?: string[];
  /** The node's registered name (or the host, for an unregistered one). */
  node?: string;
}

/** The kind and value of a lock's target ('user', 'alice'). */
export function lockTargetOf(t: LockTarget): { kind: LockTargetKind; value: string } {
  for (const kind of LOCK_TARGET_KINDS) {
    const value = t[kind];
    if (typeof value === 'string' && value !== '') return { kind, value };
  }
  return { kind: 'user', value: '' };
}

/** 'user alice', 'role dev', 'login root', 'node web1'. */
export function lockTargetText(t: LockTarget): string {
  const { kind, value } = lockTargetOf(t);
  return `${kind} ${value}`;
}

/** The message of a refusal or a cut: "user alice is locked: <reason>". */
export function lockMessage(lock: Pick<LockInfo, 'target' | 'reason'>): string {
  return `${lockTargetText(lock.target)} is locked${lock.reason ? `: ${lock.reason}` : ''}`;
}

/** Whether a lock covers a subject. */
export function lockCovers(lock: Pick<LockInfo, 'target'>, s: LockSubject): boolean {
  const { kind, value } = lockTargetOf(lock.target);
  switch (kind) {
    case 'user': return s.user === value;
    case 'role': return (s.roles ?? []).includes(value);
    case 'login': return s.login !== undefined ? s.login === value : (s.principals ?? []).includes(value);
    case 'node': return s.node !== undefined && s.node.toLowerCase() === value.toLowerCase();
  }
}

/** The first lock (in force at `now`) that covers a subject. */
export function findLock<L extends LockInfo>(locks: readonly L[], s: LockSubject, now: Date): L | undefined {
  return locks.find((l) => (!l.expiresAt || Date.parse(l.expiresAt) > now.getTime()) && lockCovers(l, s));
}

/** A lock refuses: 403, with the lock's reason in the message. */
export class LockedError extends PosternError {
  constructor(message: string, options: { cause?: unknown; status?: number } = {}) {
    super('ERR_POSTERN_LOCKED', message, { status: 403, exitCode: 1, hint: 'Ask an admin; they see the locks with:  postern lock ls', ...options });
  }
}

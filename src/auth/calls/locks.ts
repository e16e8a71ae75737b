/**
 * Locks: the admin calls that make, list and remove them. Making a lock on a user (or a
 * role) ends that user's web sessions at once; what else a lock stops is checked where it
 * happens: logins (credentials.ts), web sessions (web-sessions.ts), dials (access-policy.ts)
 * and every proxy's live connections (checkAccount, polled by proxy/live-conns.ts).
 */
import { AuditType } from '../../api/audit.ts';
import { lockTargetOf } from '../../api/locks.ts';
import * as locks from '../locks.ts';
import * as users from '../users.ts';
import * as webSessions from '../web-sessions.ts';
import type { CallContext, Handlers } from './context.ts';

/** The calls of this group. */
export type LockCallName = 'createLock' | 'listLocks' | 'deleteLock';

/** The handlers of locks. */
export function lockCalls(ctx: CallContext): Handlers<LockCallName> {
  const { backend, clock } = ctx;
  return {
    async createLock(id, req) {
      const lock = await locks.createLock(backend, req, id.name, clock.now());
      const { kind, value } = lockTargetOf(lock.target);
      // Web sessions of the users it stops end now (a browser's next request is a 401), not at their next check.
      const stopped = kind === 'user' ? [value] : kind === 'role' ? (await users.listUsers(backend)).filter((u) => u.roles.includes(value)).map((u) => u.name) : [];
      for (const name of stopped) await webSessions.deleteUserSessions(backend, name);
      await ctx.audit({
        type: AuditType.lockCreated, user: id.name, success: true, lockId: lock.id, target: lock.target, reason: lock.reason,
        ...(lock.expiresAt ? { expiresAt: lock.expiresAt } : {}),
      });
      return lock;
    },

    async listLocks() {
      return locks.listLocks(backend, clock.now());
    },

    async deleteLock(id, req) {
      const lock = await locks.deleteLock(backend, req?.id, clock.now());
      await ctx.audit({ type: AuditType.lockDeleted, user: id.name, success: true, lockId: lock.id, target: lock.target, reason: lock.reason });
      return lock;
    },
  };
}

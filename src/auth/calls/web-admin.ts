/**
 * The web UI's admin pages: one entry point through which a proxy makes an admin call for
 * the user of a web session. The proxy proves nothing but the session id; auth looks the
 * session up, checks the user's roles as they are now (a user who lost the admin role
 * loses the pages at once, not when the session ends), and runs the call as an admin
 * identity named after the user, so the call's own checks and audit events are the CLI's.
 */
import { AccessDeniedError, ValidationError } from '../../core/errors.ts';
import { AuditType } from '../../api/audit.ts';
import type { Identity } from '../../api/auth-types.ts';
import { isWebAdminCall, WEB_ADMIN_CALLS } from '../../api/web-admin.ts';
import * as users from '../users.ts';
import * as webSessions from '../web-sessions.ts';
import { clientAddr } from './context.ts';
import type { CallContext, Handlers } from './context.ts';

/** The calls of this group. */
export type WebAdminCallGroup = 'webAdmin';

/** Runs a call as an identity, with the role check of AuthServer.call. */
export type Dispatch = (id: Identity, method: string, arg: unknown) => Promise<unknown>;

/** The handler of `webAdmin`; `dispatch` runs the admin call itself. */
export function webAdminCalls(ctx: CallContext, dispatch: Dispatch): Handlers<WebAdminCallGroup> {
  const { backend, clock } = ctx;
  return {
    async webAdmin(_id, req) {
      const rec = await webSessions.getWebSession(backend, req?.sessionId, clock.now());
      const call: unknown = req.call;
      if (!isWebAdminCall(call)) {
        throw new ValidationError(`"${String(call)}" is not an admin call of the web UI`, { hint: `The calls are: ${WEB_ADMIN_CALLS.join(', ')}` });
      }
      const user = await users.getUser(backend, rec.user);
      if (!user?.roles.includes('admin')) {
        await ctx.audit({ type: AuditType.accessDenied, user: rec.user, addr: clientAddr(req), success: false, reason: `${call} without the admin role`, message: 'only admins may use the admin pages', via: 'web' });
        throw new AccessDeniedError('only admins may do this', { hint: 'Ask an admin for the admin role' });
      }
      return dispatch({ role: 'admin', name: rec.user }, call, req.arg ?? {});
    },
  };
}

/**
 * Web logins and the account: web sessions (their keys stay in auth; the proxy signs
 * through webSessionAgent) and the account changes of the web UI (password, TOTP).
 */
import { randomBytes } from 'node:crypto';
import { getJson } from '../../storage/backend.ts';
import { AccessDeniedError, ValidationError } from '../../core/errors.ts';
import { AuditType } from '../../api/audit.ts';
import { answerAgentRequest } from '../../ssh/agent-server.ts';
import { getSettings } from '../settings.ts';
import * as users from '../users.ts';
import * as roleStore from '../role-store.ts';
import * as webSessions from '../web-sessions.ts';
import { signWithCa, userCertExtensions } from '../ssh-ca.ts';
import { checkPasswordPolicy, hashPassword } from '../passwords.ts';
import { checkTotp, newTotpSecret, totpUri } from '../totp.ts';
import { str } from '../args.ts';
import { checkCredentials } from './credentials.ts';
import { clientAddr } from './context.ts';
import type { CallContext, Handlers } from './context.ts';

/** How long a TOTP enrolment begun with beginTotpEnrol may be finished. */
export const TOTP_ENROL_TTL_MS = 10 * 60_000;

/** The calls of this group. */
export type WebSessionCallName = 'createWebSession' | 'getWebSession' | 'deleteWebSession' | 'webSessionAgent' | 'changePassword' | 'beginTotpEnrol' | 'finishTotpEnrol';

/** The handlers of web sessions and account changes. */
export function webSessionCalls(ctx: CallContext): Handlers<WebSessionCallName> {
  const { backend, clock, clusterName } = ctx;
  return {
    async createWebSession(_id, req) {
      const now = clock.now();
      const name = str(req?.user, 'user');
      const addr = clientAddr(req);
      const settings = await getSettings(backend);
      // The same checks as loginSsh; only the error differs, as the web API promises one for every mistake.
      const user = await checkCredentials(ctx, name, str(req.password, 'password'), req.otp, addr, settings, now).catch((err: unknown) => { throw webSessions.webLoginError(err); });
      const roles = await roleStore.existingRoles(backend, user.roles);
      const principals = roleStore.allowedLogins(roles, user.logins);
      if (principals.length === 0) {
        await ctx.audit({ type: AuditType.loginFailure, user: name, addr, success: false, message: 'no role grants a login' });
        throw new AccessDeniedError(`no role of ${name} grants any login`, { hint: `Ask an admin to give ${name} a role with logins` });
      }
      const ttlMs = Math.min(webSessions.WEB_SESSION_TTL_MS, settings.max_session_ttl);
      const key = webSessions.newSessionKey();
      const cert = await signWithCa(backend, 'user', { subjectPublicKey: key.publicWire, keyId: name, principals, ttlMs, now, extensions: userCertExtensions(user.account) });
      const rec: webSessions.WebSessionRecord = {
        user: name, roles: user.roles, logins: principals, isAdmin: user.roles.includes('admin'), csrfToken: randomBytes(24).toString('base64url'),
        createdAt: now.toISOString(), expiresAt: new Date(now.getTime() + ttlMs).toISOString(), privateKey: key.privateKey, certificate: cert.raw.toString('base64'),
        ...(user.account ? { account: user.account } : {}),
      };
      const sessionId = await webSessions.createWebSession(backend, rec);
      await ctx.audit({ type: AuditType.loginSuccess, user: name, addr, success: true, method: settings.second_factor === 'otp' ? 'password+otp' : 'password', via: 'web' });
      await ctx.audit({ type: AuditType.webSessionCreate, user: name, addr, success: true, expiresAt: rec.expiresAt, serial: cert.serial.toString(), principals });
      return { ...webSessions.sessionInfo(rec), sessionId };
    },

    async getWebSession(_id, req) {
      return webSessions.sessionInfo(await webSessions.getWebSession(backend, req?.sessionId, clock.now()));
    },

    async deleteWebSession(_id, req) {
      const rec = await webSessions.getWebSession(backend, req?.sessionId, clock.now()).catch(() => undefined);
      if (!(await webSessions.deleteWebSession(backend, req?.sessionId)) || !rec) return;
      await ctx.audit({ type: AuditType.webSessionEnd, user: rec.user, addr: clientAddr(req), success: true, reason: 'logout' });
    },

    async webSessionAgent(_id, req) {
      const rec = await webSessions.getWebSession(backend, req?.sessionId, clock.now());
      const answer = answerAgentRequest(webSessions.sessionAgentKey(rec), webSessions.decodeAgentMessage(req.message));
      return { message: answer.toString('base64') };
    },

    async changePassword(_id, req) {
      const now = clock.now();
      const rec = await webSessions.getWebSession(backend, req?.sessionId, now);
      const newPassword = str(req.newPassword, 'newPassword');
      checkPasswordPolicy(newPassword);
      const addr = clientAddr(req);
      await checkCredentials(ctx, rec.user, str(req.currentPassword, 'currentPassword'), req.otp, addr, await getSettings(backend), now);
      const passwordHash = await hashPassword(newPassword, ctx.passwordCost);
      await users.modifyUser(backend, rec.user, (u) => ({ ...u, passwordHash }));
      await ctx.audit({ type: AuditType.passwordChanged, user: rec.user, addr, success: true });
    },

    async beginTotpEnrol(_id, req) {
      const now = clock.now();
      const rec = await webSessions.getWebSession(backend, req?.sessionId, now);
      const addr = clientAddr(req);
      await checkCredentials(ctx, rec.user, str(req.currentPassword, 'currentPassword'), req.otp, addr, await getSettings(backend), now);
      const enrolId = randomBytes(16).toString('base64url');
      const totpSecret = newTotpSecret();
      const expires = new Date(now.getTime() + TOTP_ENROL_TTL_MS);
      await backend.put(`totp_enrol/${enrolId}`, JSON.stringify({ user: rec.user, secret: totpSecret, expiresAt: expires.getTime() }), { expires });
      return { enrolId, totpSecret, otpauthUri: totpUri(totpSecret, clusterName, rec.user) };
    },

    async finishTotpEnrol(_id, req) {
      const now = clock.now();
      const rec = await webSessions.getWebSession(backend, req?.sessionId, now);
      const enrolId = str(req.enrolId, 'enrolId');
      const pending = /^[A-Za-z0-9_-]{22}$/.test(enrolId) ? await getJson<{ user: string; secret: string; expiresAt?: number }>(backend, `totp_enrol/${enrolId}`) : undefined;
      // The record's own expiry is checked against auth's clock as well as storage's.
      if (!pending || pending.user !== rec.user || (pending.expiresAt !== undefined && pending.expiresAt <= now.getTime())) throw new ValidationError('this enrolment has expired', { hint: 'Start again: enrolments last 10 minutes' });
      const counter = checkTotp(pending.secret, str(req.otp, 'otp').trim(), now);
      if (counter === undefined) throw new ValidationError('the code does not match the new secret', { hint: 'Enter the current code your authenticator app shows for the new entry' });
      await users.modifyUser(backend, rec.user, (u) => ({ ...u, totp: { secret: pending.secret, lastCounter: counter } }));
      await backend.delete(`totp_enrol/${enrolId}`);
      await ctx.audit({ type: AuditType.totpEnrolled, user: rec.user, addr: clientAddr(req), success: true });
    },
  };
}

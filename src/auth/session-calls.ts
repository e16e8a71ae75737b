/**
 * The Auth API calls of the web UI and of live sessions: web sessions (their keys stay
 * here; the proxy signs through webSessionAgent), account changes (password, TOTP), and
 * the live sessions proxies report, with the join decision. AuthServer dispatches the
 * `do_<name>` methods here as it does its own; the checks of credentials and the audit log
 * are AuthServer's, passed in.
 */
import { randomBytes } from 'node:crypto';
import type { Backend } from '../storage/backend.ts';
import { getJson } from '../storage/backend.ts';
import type { Clock } from '../core/clock.ts';
import { AccessDeniedError, NotFoundError, ValidationError } from '../core/errors.ts';
import type { ActiveSession, CreateWebSessionRequest, Identity, JoinMode, WebSessionInfo } from './auth-client.ts';
import type { AuditEvent } from './audit.ts';
import { AuditType } from './audit.ts';
import type { ClusterSettings } from './settings.ts';
import { getSettings } from './settings.ts';
import * as users from './users.ts';
import * as roleStore from './role-store.ts';
import * as active from './active-sessions.ts';
import * as webSessions from './web-sessions.ts';
import { answerAgentRequest } from '../ssh/agent-server.ts';
import { signWithCa, USER_CERT_EXTENSIONS } from './ssh-ca.ts';
import { checkPasswordPolicy, hashPassword } from './passwords.ts';
import { checkTotp, newTotpSecret, totpUri } from './totp.ts';
import { str } from './args.ts';

/** How long a TOTP enrolment begun with beginTotpEnrol may be finished. */
export const TOTP_ENROL_TTL_MS = 10 * 60_000;

/** What the calls need of AuthServer. */
export interface SessionCallsContext {
  backend: Backend;
  clock: Clock;
  clusterName: string;
  /** log2 of scrypt's N for new password hashes (passwords.ts). */
  passwordCost: number;
  audit(event: Omit<AuditEvent, 'time'>): Promise<void>;
  /** Lockout, password, one-use TOTP code; audited; the error never says which part was wrong. */
  checkCredentials(name: string, password: string, otp: unknown, addr: string | undefined, settings: ClusterSettings, now: Date): Promise<users.UserRecord>;
}

/** The web and live-session calls. */
export class SessionCalls {
  private readonly backend: Backend;
  private readonly clock: Clock;
  private readonly clusterName: string;
  private readonly ctx: SessionCallsContext;

  constructor(ctx: SessionCallsContext) {
    this.ctx = ctx;
    this.backend = ctx.backend;
    this.clock = ctx.clock;
    this.clusterName = ctx.clusterName;
  }

  private audit(event: Omit<AuditEvent, 'time'>): Promise<void> {
    return this.ctx.audit(event);
  }

  private checkCredentials(name: string, password: string, otp: unknown, addr: string | undefined, settings: ClusterSettings, now: Date): Promise<users.UserRecord> {
    return this.ctx.checkCredentials(name, password, otp, addr, settings, now);
  }

  // ---- web sessions (web-sessions.ts): the web UI's logins; their keys never leave auth ----

  protected async do_createWebSession(_id: Identity, req: CreateWebSessionRequest): Promise<WebSessionInfo & { sessionId: string }> {
    const now = this.clock.now();
    const name = str(req?.user, 'user');
    const addr = typeof req.clientAddr === 'string' ? req.clientAddr : undefined;
    const settings = await getSettings(this.backend);
    // The same checks as loginSsh; only the error differs, as the web API promises one for every mistake.
    const user = await this.checkCredentials(name, str(req.password, 'password'), req.otp, addr, settings, now).catch((err: unknown) => { throw webSessions.webLoginError(err); });
    const roles = await roleStore.existingRoles(this.backend, user.roles);
    const principals = roleStore.allowedLogins(roles, user.logins);
    if (principals.length === 0) {
      await this.audit({ type: AuditType.loginFailure, user: name, addr, success: false, message: 'no role grants a login' });
      throw new AccessDeniedError(`no role of ${name} grants any login`, { hint: `Ask an admin to give ${name} a role with logins` });
    }
    const ttlMs = Math.min(webSessions.WEB_SESSION_TTL_MS, settings.max_session_ttl);
    const key = webSessions.newSessionKey();
    const cert = await signWithCa(this.backend, 'user', { subjectPublicKey: key.publicWire, keyId: name, principals, ttlMs, now, extensions: USER_CERT_EXTENSIONS });
    const rec: webSessions.WebSessionRecord = {
      user: name, roles: user.roles, logins: principals, isAdmin: user.roles.includes('admin'), csrfToken: randomBytes(24).toString('base64url'),
      createdAt: now.toISOString(), expiresAt: new Date(now.getTime() + ttlMs).toISOString(), privateKey: key.privateKey, certificate: cert.raw.toString('base64'),
    };
    const sessionId = await webSessions.createWebSession(this.backend, rec);
    await this.audit({ type: AuditType.loginSuccess, user: name, addr, success: true, method: settings.second_factor === 'otp' ? 'password+otp' : 'password', via: 'web' });
    await this.audit({ type: AuditType.webSessionCreate, user: name, addr, success: true, expiresAt: rec.expiresAt, serial: cert.serial.toString(), principals });
    return { ...webSessions.sessionInfo(rec), sessionId };
  }

  protected async do_getWebSession(_id: Identity, req: { sessionId: string }): Promise<WebSessionInfo> {
    return webSessions.sessionInfo(await webSessions.getWebSession(this.backend, req?.sessionId, this.clock.now()));
  }

  protected async do_deleteWebSession(_id: Identity, req: { sessionId: string; clientAddr?: string }): Promise<void> {
    const rec = await webSessions.getWebSession(this.backend, req?.sessionId, this.clock.now()).catch(() => undefined);
    if (!(await webSessions.deleteWebSession(this.backend, req?.sessionId)) || !rec) return;
    await this.audit({ type: AuditType.webSessionEnd, user: rec.user, addr: typeof req.clientAddr === 'string' ? req.clientAddr : undefined, success: true, reason: 'logout' });
  }

  protected async do_webSessionAgent(_id: Identity, req: { sessionId: string; message: string }): Promise<{ message: string }> {
    const rec = await webSessions.getWebSession(this.backend, req?.sessionId, this.clock.now());
    const answer = answerAgentRequest(webSessions.sessionAgentKey(rec), webSessions.decodeAgentMessage(req.message));
    return { message: answer.toString('base64') };
  }

  protected async do_changePassword(_id: Identity, req: { sessionId: string; currentPassword: string; otp?: string; newPassword: string; clientAddr: string }): Promise<void> {
    const now = this.clock.now();
    const rec = await webSessions.getWebSession(this.backend, req?.sessionId, now);
    const newPassword = str(req.newPassword, 'newPassword');
    checkPasswordPolicy(newPassword);
    const addr = typeof req.clientAddr === 'string' ? req.clientAddr : undefined;
    await this.checkCredentials(rec.user, str(req.currentPassword, 'currentPassword'), req.otp, addr, await getSettings(this.backend), now);
    const passwordHash = await hashPassword(newPassword, this.ctx.passwordCost);
    await users.modifyUser(this.backend, rec.user, (u) => ({ ...u, passwordHash }));
    await this.audit({ type: AuditType.passwordChanged, user: rec.user, addr, success: true });
  }

  protected async do_beginTotpEnrol(_id: Identity, req: { sessionId: string; currentPassword: string; otp?: string; clientAddr: string }): Promise<{ enrolId: string; totpSecret: string; otpauthUri: string }> {
    const now = this.clock.now();
    const rec = await webSessions.getWebSession(this.backend, req?.sessionId, now);
    const addr = typeof req.clientAddr === 'string' ? req.clientAddr : undefined;
    await this.checkCredentials(rec.user, str(req.currentPassword, 'currentPassword'), req.otp, addr, await getSettings(this.backend), now);
    const enrolId = randomBytes(16).toString('base64url');
    const totpSecret = newTotpSecret();
    const expires = new Date(now.getTime() + TOTP_ENROL_TTL_MS);
    await this.backend.put(`totp_enrol/${enrolId}`, JSON.stringify({ user: rec.user, secret: totpSecret, expiresAt: expires.getTime() }), { expires });
    return { enrolId, totpSecret, otpauthUri: totpUri(totpSecret, this.clusterName, rec.user) };
  }

  protected async do_finishTotpEnrol(_id: Identity, req: { sessionId: string; enrolId: string; otp: string; clientAddr: string }): Promise<void> {
    const now = this.clock.now();
    const rec = await webSessions.getWebSession(this.backend, req?.sessionId, now);
    const enrolId = str(req.enrolId, 'enrolId');
    const pending = /^[A-Za-z0-9_-]{22}$/.test(enrolId) ? await getJson<{ user: string; secret: string; expiresAt?: number }>(this.backend, `totp_enrol/${enrolId}`) : undefined;
    // The record's own expiry is checked against auth's clock as well as storage's.
    if (!pending || pending.user !== rec.user || (pending.expiresAt !== undefined && pending.expiresAt <= now.getTime())) throw new ValidationError('this enrolment has expired', { hint: 'Start again: enrolments last 10 minutes' });
    const counter = checkTotp(pending.secret, str(req.otp, 'otp').trim(), now);
    if (counter === undefined) throw new ValidationError('the code does not match the new secret', { hint: 'Enter the current code your authenticator app shows for the new entry' });
    await users.modifyUser(this.backend, rec.user, (u) => ({ ...u, totp: { secret: pending.secret, lastCounter: counter } }));
    await this.backend.delete(`totp_enrol/${enrolId}`);
    await this.audit({ type: AuditType.totpEnrolled, user: rec.user, addr: typeof req.clientAddr === 'string' ? req.clientAddr : undefined, success: true });
  }

  // ---- live sessions (active-sessions.ts) ----

  protected async do_upsertActiveSession(id: Identity, req: ActiveSession): Promise<void> {
    const s = active.checkActiveSession(req);
    // A proxy reports under its own name, whatever the report says, and only its own sessions.
    const proxy = id.role === 'proxy' ? id.name : s.proxy;
    const before = await active.getActiveSession(this.backend, s.id);
    if (before && before.proxy !== proxy) throw new AccessDeniedError(`session ${s.id} belongs to proxy ${before.proxy}`, { hint: 'Session ids are unique per proxy; report only the sessions this proxy carries' });
    await active.upsertActiveSession(this.backend, { ...s, proxy }, this.clock.now());
  }

  protected async do_endActiveSession(id: Identity, req: { id: string }): Promise<void> {
    const sessionId = active.checkSessionId(req?.id);
    const before = await active.getActiveSession(this.backend, sessionId);
    if (before && id.role === 'proxy' && before.proxy !== id.name) throw new AccessDeniedError(`session ${sessionId} belongs to proxy ${before.proxy}`, { hint: 'A proxy ends only the sessions it carries' });
    await active.endActiveSession(this.backend, sessionId);
  }

  protected async do_listActiveSessions(id: Identity, req: { user?: string }): Promise<ActiveSession[]> {
    const all = await active.listActiveSessions(this.backend);
    if (req?.user === undefined && id.role === 'admin') return all;
    const viewer = str(req?.user, 'user');
    const rec = await users.getUser(this.backend, viewer);
    if (!rec) return [];
    const mine = await roleStore.existingRoles(this.backend, rec.roles);
    const out: ActiveSession[] = [];
    for (const s of all) {
      if (s.user === viewer) { out.push(s); continue; }
      const owner = await users.getUser(this.backend, s.user);
      if (active.joinModes(mine, owner?.roles ?? []).size > 0) out.push(s);
    }
    return out;
  }

  protected async do_authorizeJoin(_id: Identity, req: { user: string; sessionId: string; mode: JoinMode; clientAddr: string }): Promise<ActiveSession> {
    const user = str(req?.user, 'user');
    const sessionId = active.checkSessionId(req.sessionId);
    if (req.mode !== 'observer' && req.mode !== 'peer') throw new ValidationError('mode must be "observer" or "peer"');
    const base = { type: AuditType.sessionJoin, user, addr: typeof req.clientAddr === 'string' ? req.clientAddr : undefined, sessionId, mode: req.mode };
    const s = await active.getActiveSession(this.backend, sessionId);
    if (!s) {
      await this.audit({ ...base, success: false, reason: 'no such session' });
      throw new NotFoundError(`no live session ${sessionId}`, { hint: 'List the live sessions you may join with:  postern sessions ls' });
    }
    const joiner = await users.getUser(this.backend, user);
    const owner = await users.getUser(this.backend, s.user);
    const allowed = s.user === user || (joiner !== undefined && active.joinModes(await roleStore.existingRoles(this.backend, joiner.roles), owner?.roles ?? []).has(req.mode));
    const where = { owner: s.user, node: s.node, login: s.login };
    if (!allowed) {
      const message = `you may not join the session of ${s.user} as ${req.mode}`;
      await this.audit({ ...base, ...where, success: false, reason: 'no join_sessions rule allows it', message });
      throw new AccessDeniedError(message, { hint: 'An admin can allow it with a role\'s join_sessions: [{ roles: [...], modes: [observer, peer] }]' });
    }
    await this.audit({ ...base, ...where, success: true });
    return s;
  }
}

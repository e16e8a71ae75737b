/**
 * Users and login: SSH logins (a user certificate), invites and sign-up, the admin calls on
 * users, and join tokens.
 */
import { AccessDeniedError, InviteInvalidError, NotFoundError, ValidationError } from '../../core/errors.ts';
import { parseAuthorizedKey } from '../../ssh/keys.ts';
import { formatCertificate } from '../../ssh/certs.ts';
import type { InviteResult } from '../../api/types.ts';
import { AuditType } from '../../api/audit.ts';
import * as users from '../users.ts';
import * as invites from '../invites.ts';
import * as tokens from '../tokens.ts';
import * as roleStore from '../role-store.ts';
import { getSettings } from '../settings.ts';
import { sshCaPublicKey, signWithCa, userCertExtensions } from '../ssh-ca.ts';
import * as webSessions from '../web-sessions.ts';
import * as locks from '../locks.ts';
import { lockMessage } from '../../api/locks.ts';
import { hashPassword, checkPasswordPolicy } from '../passwords.ts';
import { checkTotp, newTotpSecret, normaliseTotpSecret, totpUri } from '../totp.ts';
import { str } from '../args.ts';
import { checkCredentials, throttleLimits } from './credentials.ts';
import { clientAddr } from './context.ts';
import type { CallContext, Handlers } from './context.ts';

/** The default certificate lifetime of a login. */
export const DEFAULT_LOGIN_TTL = 12 * 3_600_000;
/** Invites live one hour by default and 48 hours at most. */
export const DEFAULT_INVITE_TTL = 3_600_000;
/** The longest invite. */
export const MAX_INVITE_TTL = 48 * 3_600_000;

/** The calls of this group. */
export type UserCallName = 'loginSsh' | 'getInvite' | 'acceptInvite' | 'createUser' | 'listUsers' | 'deleteUser' | 'resetUser' | 'createToken'
  | 'updateUser' | 'unlockUser' | 'listTokens' | 'deleteToken' | 'checkAccount';

/** A list argument of updateUser: absent, or strings. */
function names(v: unknown, what: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new ValidationError(`${what} must be a list of names`);
  return (v as string[]).map((x) => x.trim()).filter(Boolean);
}

/** A list after `set`, then `add`, then `remove`; the order of the first appearance is kept. */
export function editList(current: string[], set?: string[], add?: string[], remove?: string[]): string[] {
  const drop = new Set(remove ?? []);
  return [...new Set([...(set ?? current), ...(add ?? [])])].filter((x) => !drop.has(x));
}

/** The handlers of logins, invites, users and tokens. */
export function userCalls(ctx: CallContext): Handlers<UserCallName> {
  const { backend, clock, clusterName } = ctx;

  const inviteUrl = async (token: string): Promise<string> => {
    const proxies = await backend.getRange('proxies/');
    const newest = proxies.map((p) => JSON.parse(p.value) as { webPublicAddr: string; lastSeen: string }).sort((a, b) => b.lastSeen.localeCompare(a.lastSeen))[0];
    const addr = newest?.webPublicAddr ?? 'localhost:3080';
    return `https://${addr}/web/invite/${token}`;
  };

  const newInvite = async (name: string, ttlMs: number): Promise<InviteResult> => {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_INVITE_TTL) {
      throw new ValidationError('invite ttl must be more than zero and at most 48h');
    }
    const { token, expiresAt } = await invites.createInvite(backend, name, ttlMs, newTotpSecret(), clock.now());
    return { user: name, inviteUrl: await inviteUrl(token), expiresAt: expiresAt.toISOString() };
  };

  return {
    async loginSsh(_id, req) {
      const now = clock.now();
      const name = str(req.user, 'user');
      const password = str(req.password, 'password');
      const addr = clientAddr(req);
      let subject: Buffer;
      try {
        const parsed = parseAuthorizedKey(str(req.publicKey, 'publicKey'));
        if (!/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa)$/.test(parsed.type)) throw new Error(parsed.type);
        subject = parsed.wire;
      } catch {
        throw new ValidationError('publicKey must be an ed25519, ecdsa or rsa public key in authorized_keys format');
      }
      const settings = await getSettings(backend);
      const user = await checkCredentials(ctx, name, password, req.otp, addr, settings, now);

      const requested = req.ttlMs === undefined ? DEFAULT_LOGIN_TTL : Number(req.ttlMs);
      if (!Number.isFinite(requested) || requested < 60_000) throw new ValidationError('ttl must be at least one minute');
      const ttlMs = Math.min(requested, settings.max_session_ttl);
      // The certificate's principals: every login a role of the user grants ({{internal.logins}} is the user's own).
      const principals = roleStore.allowedLogins(await roleStore.existingRoles(backend, user.roles), user.logins);
      if (principals.length === 0) {
        await ctx.audit({ type: AuditType.loginFailure, user: name, addr, success: false, message: 'no role grants a login' });
        throw new AccessDeniedError(`no role of ${name} grants any login, so there is nothing to put in a certificate`, {
          hint: `Ask an admin to give ${name} a role with logins (they see the roles with  postern roles ls)`,
        });
      }
      const cert = await signWithCa(backend, 'user', {
        subjectPublicKey: subject, keyId: name, principals, ttlMs, now, extensions: userCertExtensions(user.account),
      });
      await ctx.audit({ type: AuditType.loginSuccess, user: name, addr, success: true, method: settings.second_factor === 'otp' ? 'password+otp' : 'password' });
      await ctx.audit({
        type: AuditType.certIssued, user: name, addr, success: true, serial: cert.serial.toString(), principals,
        validBefore: cert.validBefore.toISOString(),
      });
      return {
        clusterName,
        user: name,
        logins: principals,
        certificate: formatCertificate(cert, `${name}@${clusterName}`),
        validAfter: cert.validAfter.toISOString(),
        validBefore: cert.validBefore.toISOString(),
        hostCaKeys: [await sshCaPublicKey(backend, 'host')],
        ttlCapped: ttlMs < requested,
      };
    },

    async getInvite(_id, req) {
      const inv = await invites.getInvite(backend, str(req.token, 'token'), clock.now());
      const s = await getSettings(backend);
      return {
        user: inv.user,
        expiresAt: inv.expiresAt,
        secondFactor: s.second_factor,
        ...(s.second_factor === 'otp' ? { totpSecret: inv.totpSecret, otpauthUri: totpUri(inv.totpSecret, clusterName, inv.user) } : {}),
      };
    },

    async acceptInvite(_id, req) {
      const now = clock.now();
      const token = str(req.token, 'token');
      const addr = clientAddr(req);
      const s = await getSettings(backend);
      // Before the invite is looked up or anything hashed: guessing tokens is throttled too.
      ctx.throttle.take({ addr, action: 'sign-up' }, now, throttleLimits(s));
      const inv = await invites.getInvite(backend, token, now);
      ctx.throttle.take({ user: inv.user, action: 'sign-up' }, now, throttleLimits(s));
      const password = str(req.password, 'password');
      checkPasswordPolicy(password);
      let totp: { secret: string; lastCounter: number } | undefined;
      if (s.second_factor === 'otp') {
        const secret = normaliseTotpSecret(req.totpSecret ?? inv.totpSecret);
        const code = typeof req.otp === 'string' ? req.otp.trim() : '';
        if (!code) throw new ValidationError('a one-time code is needed to confirm the authenticator', { hint: 'Pass the current code with --otp CODE' });
        const counter = checkTotp(secret, code, now);
        if (counter === undefined) {
          await ctx.audit({ type: AuditType.inviteFailure, user: inv.user, addr, success: false, message: 'wrong one-time code' });
          throw new ValidationError('the one-time code does not match the secret', {
            hint: 'Check the clock of the device and that the app has the secret shown; then enter the current code',
          });
        }
        totp = { secret, lastCounter: counter };
      }
      const passwordHash = await hashPassword(password, ctx.passwordCost);
      if (!(await invites.consumeInvite(backend, token))) throw new InviteInvalidError('the invite was already used');
      await users.modifyUser(backend, inv.user, (u) => ({ ...u, passwordHash, ...(totp ? { totp } : {}) }));
      await users.clearFailures(backend, inv.user);
      await ctx.audit({ type: AuditType.inviteAccepted, user: inv.user, addr, success: true });
      return { user: inv.user };
    },

    async createUser(id, req) {
      const roles = Array.isArray(req.roles) && req.roles.length > 0 ? req.roles.map(String) : ['access'];
      await roleStore.resolveRoles(backend, roles);
      const logins = Array.isArray(req.logins) ? req.logins.map(String) : [];
      await users.createUser(backend, { name: str(req.name, 'name'), logins, roles, createdAt: clock.now().toISOString() });
      const result = await newInvite(req.name, Number(req.inviteTtlMs ?? DEFAULT_INVITE_TTL));
      await ctx.audit({ type: AuditType.userCreated, user: id.name, success: true, target: req.name, roles, logins });
      return result;
    },

    async listUsers() {
      const now = clock.now();
      return Promise.all((await users.listUsers(backend)).map((u) => users.userInfo(backend, u, now)));
    },

    async deleteUser(id, req) {
      const name = str(req.name, 'name');
      await users.deleteUser(backend, name);
      await invites.revokeInvites(backend, name);
      await webSessions.deleteUserSessions(backend, name);
      await ctx.audit({ type: AuditType.userDeleted, user: id.name, success: true, target: name });
    },

    async resetUser(id, req) {
      const name = str(req.name, 'name');
      // A new generation: every certificate and web session issued before stops working (checkAccount).
      await users.modifyUser(backend, name, (u) => ({ name: u.name, logins: u.logins, roles: u.roles, createdAt: u.createdAt, account: users.newAccountGeneration() }));
      await webSessions.deleteUserSessions(backend, name);
      await users.clearFailures(backend, name);
      const result = await newInvite(name, Number(req.inviteTtlMs ?? DEFAULT_INVITE_TTL));
      await ctx.audit({ type: AuditType.userReset, user: id.name, success: true, target: name });
      return result;
    },

    async checkAccount(_id, req) {
      const name = str(req?.user, 'user');
      const now = clock.now();
      const user = await users.getUser(backend, name);
      // Locks first, so the user is told the lock's reason (a lock also ends web sessions): the user and
      // their roles always, the login and the node when a live connection names them.
      const principals = Array.isArray(req.principals) ? req.principals.filter((p): p is string => typeof p === 'string') : undefined;
      const lock = await locks.lockFor(backend, {
        user: name, roles: user?.roles ?? [],
        ...(typeof req.login === 'string' && req.login ? { login: req.login } : principals ? { principals } : {}),
        ...(typeof req.node === 'string' && req.node ? { node: req.node } : {}),
      }, now);
      if (lock) return { valid: false, locked: true, reason: lockMessage(lock) };
      if (!user) return { valid: false, reason: 'the account no longer exists' };
      let account = typeof req.account === 'string' ? req.account : '';
      if (req.sessionId !== undefined) {
        // A web terminal's connection: its web session must still be live and the user's (a reset or removal deletes it).
        const rec = await webSessions.getWebSession(backend, req.sessionId, now).catch(() => undefined);
        if (!rec || rec.user !== name) return { valid: false, reason: 'the web session was ended (the account was reset or removed, or the user logged out)' };
        account = rec.account ?? '';
      }
      // Certificates from before generations carry none; they stay valid until the account's first reset.
      if ((user.account ?? '') !== account) return { valid: false, reason: 'the account was reset or re-created since this certificate was issued' };
      return { valid: true };
    },

    async createToken(id, req) {
      if (req.type !== 'proxy') throw new ValidationError(`unknown token type "${String(req.type)}"`, { hint: 'The type is: proxy' });
      const ttl = Number(req.ttlMs ?? 3_600_000);
      if (!(ttl > 0 && ttl <= 7 * 86_400_000)) throw new ValidationError('token ttl must be more than zero and at most 7 days');
      const { token, expiresAt } = await tokens.createToken(backend, 'proxy', ttl, clock.now());
      await ctx.audit({ type: AuditType.tokenCreated, user: id.name, success: true, tokenType: 'proxy', expiresAt: expiresAt.toISOString() });
      return { token, type: 'proxy', expiresAt: expiresAt.toISOString() };
    },

    async updateUser(id, req) {
      const name = str(req.name, 'name');
      const setRoles = names(req.setRoles, 'setRoles');
      const addRoles = names(req.addRoles, 'addRoles');
      const removeRoles = names(req.removeRoles, 'removeRoles');
      const setLogins = names(req.setLogins, 'setLogins');
      const addLogins = names(req.addLogins, 'addLogins');
      const removeLogins = names(req.removeLogins, 'removeLogins');
      if ([setRoles, addRoles, removeRoles, setLogins, addLogins, removeLogins].every((v) => v === undefined)) {
        throw new ValidationError('nothing to change', { hint: 'Give roles or logins to set, add or remove, e.g. --add-roles dev' });
      }
      const existing = await users.getUser(backend, name);
      if (!existing) throw new NotFoundError(`user "${name}" does not exist`, { hint: 'List users with:  postern users ls' });
      const roles = editList(existing.roles, setRoles, addRoles, removeRoles);
      const logins = editList(existing.logins, setLogins, addLogins, removeLogins);
      if (roles.length === 0) throw new ValidationError(`${name} would have no role left`, { hint: 'A user needs at least one role, e.g. access' });
      await roleStore.resolveRoles(backend, roles);
      users.checkLogins(logins);
      const before = { roles: existing.roles, logins: existing.logins };
      const updated = await users.modifyUser(backend, name, (u) => ({ ...u, roles, logins }));
      await ctx.audit({ type: AuditType.userUpdated, user: id.name, success: true, target: name, before, roles, logins });
      return users.userInfo(backend, updated, clock.now());
    },

    async unlockUser(id, req) {
      const name = str(req.name, 'name');
      const u = await users.getUser(backend, name);
      if (!u) throw new NotFoundError(`user "${name}" does not exist`, { hint: 'List users with:  postern users ls' });
      const wasLocked = await users.lockedUntil(backend, name, clock.now());
      await users.clearFailures(backend, name);
      await ctx.audit({ type: AuditType.userUnlocked, user: id.name, success: true, target: name, ...(wasLocked ? { lockedUntil: wasLocked.toISOString() } : {}) });
      return users.userInfo(backend, u, clock.now());
    },

    async listTokens() {
      return (await tokens.listTokens(backend, clock.now())).map((t) => ({ id: t.id, type: t.type, createdAt: t.createdAt, expiresAt: t.expiresAt }));
    },

    async deleteToken(id, req) {
      const tokenId = str(req.id, 'id').trim().toLowerCase();
      await tokens.deleteToken(backend, tokenId);
      await ctx.audit({ type: AuditType.tokenDeleted, user: id.name, success: true, tokenId: tokenId.slice(0, 16) });
    },
  };
}

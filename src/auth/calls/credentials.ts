/** The checks of every login and of every account change, shared by the login and web-session calls. */
import { BadCredentialsError, OtpReplayError, UserLockedError } from '../../core/errors.ts';
import type { PosternError } from '../../core/errors.ts';
import { AuditType } from '../../api/audit.ts';
import type { ClusterSettings } from '../../api/auth-types.ts';
import * as users from '../users.ts';
import { verifyPassword, dummyHash } from '../passwords.ts';
import { checkTotp } from '../totp.ts';
import type { CallContext } from './context.ts';

/**
 * Lockout, password, the TOTP code (once only). Failures count towards the lockout and are
 * audited; the error never says which part was wrong.
 */
export async function checkCredentials(
  ctx: CallContext, name: string, password: string, otp: unknown, addr: string | undefined, settings: ClusterSettings, now: Date,
): Promise<users.UserRecord> {
  const policy = { attempts: settings.lockout_attempts, window: settings.lockout_window, duration: settings.lockout_duration };
  const fail = async (reason: string, err: PosternError = new BadCredentialsError()): Promise<never> => {
    const locked = await users.recordFailure(ctx.backend, name, now, policy);
    await ctx.audit({ type: AuditType.loginFailure, user: name, addr, success: false, message: reason });
    if (locked) await ctx.audit({ type: AuditType.userLocked, user: name, addr, success: false, message: `locked until ${locked.toISOString()}` });
    throw err;
  };

  const lock = await users.lockedUntil(ctx.backend, name, now);
  if (lock) {
    await ctx.audit({ type: AuditType.loginFailure, user: name, addr, success: false, message: 'user is locked' });
    throw new UserLockedError(lock);
  }
  const user = await users.getUser(ctx.backend, name);
  const passwordOk = await verifyPassword(password, user?.passwordHash ?? dummyHash(ctx.passwordCost));
  if (!user || !user.passwordHash || !passwordOk) return fail(!user ? 'unknown user' : !user.passwordHash ? 'user has not signed up' : 'wrong password');
  if (settings.second_factor === 'otp') {
    const code = typeof otp === 'string' ? otp.trim() : '';
    if (!user.totp) return fail('no second factor enrolled');
    const counter = code ? checkTotp(user.totp.secret, code, now) : undefined;
    if (counter === undefined) return fail(code ? 'wrong one-time code' : 'missing one-time code');
    let replayed = false;
    await users.modifyUser(ctx.backend, name, (u) => {
      if (!u.totp || counter <= u.totp.lastCounter) { replayed = true; return u; }
      return { ...u, totp: { ...u.totp, lastCounter: counter } };
    });
    if (replayed) return fail('one-time code reused', new OtpReplayError());
  }
  await users.clearFailures(ctx.backend, name);
  return user;
}

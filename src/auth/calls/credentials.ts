/** The checks of every login and of every account change, shared by the login and web-session calls. */
import { BadCredentialsError, OtpReplayError, UserLockedError } from '../../core/errors.ts';
import type { PosternError } from '../../core/errors.ts';
import { AuditType } from '../../api/audit.ts';
import type { ClusterSettings } from '../../api/auth-types.ts';
import * as users from '../users.ts';
import { verifyPassword, dummyHash } from '../passwords.ts';
import { checkTotp } from '../totp.ts';
import { lockFor } from '../locks.ts';
import { LockedError, lockMessage } from '../../api/locks.ts';
import type { CallContext } from './context.ts';

/** The throttle limits of the cluster's settings. */
export function throttleLimits(settings: ClusterSettings): { perSource: number; perUser: number } {
  return { perSource: settings.login_rate_per_source, perUser: settings.login_rate_per_user };
}

/**
 * Throttle, lockout, password, the TOTP code (once only). The throttle (per source and per
 * name, in memory) and the lockout slot (in storage, see users.reserveAttempt) are both
 * taken before the password is hashed, so neither a flood nor a burst of parallel guesses
 * gets more checks than the limits allow. Failures keep their slot and are audited; the
 * error never says which part was wrong.
 */
export async function checkCredentials(
  ctx: CallContext, name: string, password: string, otp: unknown, addr: string | undefined, settings: ClusterSettings, now: Date,
): Promise<users.UserRecord> {
  ctx.throttle.take({ addr, user: name, action: 'login' }, now, throttleLimits(settings));
  const policy = { attempts: settings.lockout_attempts, window: settings.lockout_window, duration: settings.lockout_duration };
  const fail = async (reason: string, err: PosternError = new BadCredentialsError()): Promise<never> => {
    const locked = await users.settleFailure(ctx.backend, name, now, policy);
    await ctx.audit({ type: AuditType.loginFailure, user: name, addr, success: false, message: reason });
    if (locked) await ctx.audit({ type: AuditType.userLocked, user: name, addr, success: false, message: `locked until ${locked.toISOString()}` });
    throw err;
  };

  const { locked } = await users.reserveAttempt(ctx.backend, name, now, policy);
  if (locked) {
    await ctx.audit({ type: AuditType.loginFailure, user: name, addr, success: false, message: 'user is locked' });
    throw new UserLockedError(locked);
  }
  const user = await users.getUser(ctx.backend, name);
  ctx.onPasswordCheck?.(name);
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
  // A lock is told only to whoever proved to be the user: it names the reason.
  const lock = await lockFor(ctx.backend, { user: name, roles: user.roles }, now);
  if (lock) {
    await ctx.audit({ type: AuditType.loginFailure, user: name, addr, success: false, message: lockMessage(lock), lockId: lock.id });
    throw new LockedError(lockMessage(lock));
  }
  return user;
}

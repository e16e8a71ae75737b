/** How errors cross the wire: a PosternError becomes a JSON body and back, code intact. */
import { PosternError, RateLimitedError, UserLockedError, toPosternError } from '../core/errors.ts';
import type { ErrorBody } from './types.ts';
import { escapeControl } from '../core/text.ts';

/** The Retry-After header (seconds) an error answer carries, if any. */
export function retryAfterHeader(err: unknown): string | undefined {
  return err instanceof RateLimitedError ? String(err.retryAfterSeconds) : undefined;
}

/** The body and status an API answers with for an error. Internal errors keep their detail out. */
export function errorToBody(err: unknown): { status: number; body: ErrorBody & { exitCode?: number } } {
  const e = toPosternError(err);
  const internal = e.code === 'ERR_POSTERN_INTERNAL';
  return {
    status: internal ? 500 : e.status,
    body: {
      error: {
        code: e.code,
        message: internal ? 'internal error on the server; see its log' : e.message,
        ...(e.hint ? { hint: e.hint } : {}),
        ...(e instanceof UserLockedError ? { lockedUntil: e.lockedUntil.toISOString() } : {}),
        ...(e instanceof RateLimitedError ? { retryAfter: e.retryAfterSeconds } : {}),
      },
      exitCode: e.exitCode,
    },
  };
}

/** Rebuilds a PosternError from an API error body; text from the server is escaped. */
export function errorFromBody(status: number, body: unknown, where: string): PosternError {
  const b = body as Partial<ErrorBody & { exitCode: number }> | undefined;
  const e = b?.error;
  if (!e || typeof e.code !== 'string' || typeof e.message !== 'string') {
    return new PosternError('ERR_POSTERN_BAD_RESPONSE', `unexpected answer from ${where} (HTTP ${status})`, { status: 502, exitCode: 1 });
  }
  if (e.code === 'ERR_POSTERN_USER_LOCKED' && e.lockedUntil && !Number.isNaN(Date.parse(e.lockedUntil))) {
    return new UserLockedError(new Date(e.lockedUntil), { status });
  }
  if (e.code === 'ERR_POSTERN_RATE_LIMITED' && typeof e.retryAfter === 'number' && Number.isFinite(e.retryAfter) && e.retryAfter > 0) {
    return new RateLimitedError(escapeControl(e.message), e.retryAfter * 1000, { status, ...(e.hint ? { hint: escapeControl(e.hint) } : {}) });
  }
  return new PosternError(escapeControl(e.code), escapeControl(e.message), {
    status,
    exitCode: typeof b?.exitCode === 'number' ? b.exitCode : 1,
    ...(e.hint ? { hint: escapeControl(e.hint) } : {}),
  });
}

/**
 * Refusals that several layers raise for the same reason, each built in one place so the
 * user meets one code and one message wherever the check happens: on the engineer's
 * machine before any dial (`postern ssh`, `postern proxy ssh`), at the proxy (the TLS
 * tunnel, the recording proxy, the web terminal) or at auth (the access decision, a join).
 */
import { ExitCode, PosternError } from '../core/errors.ts';
import { escapeControl } from '../core/text.ts';

/** The code of a login that the user's certificate does not allow. */
export const LOGIN_NOT_ALLOWED = 'ERR_POSTERN_LOGIN_NOT_ALLOWED';

/** At most this much of a login is quoted back: it may come from anyone. */
const MAX_QUOTED = 64;

/**
 * A login that is not among the principals of the user's certificate. Exit 255 (the
 * connection cannot be made, as OpenSSH reports it), HTTP 403 when it crosses the API.
 */
export function loginNotAllowedError(login: string, principals: readonly string[]): PosternError {
  const allowed = principals.map(escapeControl).join(', ') || 'none';
  return new PosternError(LOGIN_NOT_ALLOWED, `login "${escapeControl(login.slice(0, MAX_QUOTED))}" is not in your certificate (it allows: ${allowed})`, {
    exitCode: ExitCode.connection,
    status: 403,
    hint: 'Connect as one of those logins (LOGIN@HOST, or -l LOGIN with postern ssh); if an admin gave you new logins, log in again:  postern login',
  });
}

/** A certificate or web session whose account was reset or removed since it was issued: 401, log in again. */
export class AccountRevokedError extends PosternError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('ERR_POSTERN_ACCOUNT_REVOKED', message, { status: 401, exitCode: ExitCode.notLoggedIn, hint: 'Log in again with:  postern login (after a reset, sign up with the new invite first)', ...options });
  }
}

/**
 * Postern's error types. Every error a user can meet has a stable `code`, a lower-case
 * message with no trailing period, an optional `hint` saying what to do next, and the
 * exit code the CLI ends with. Branch on `code`, never on message text.
 */

/** Exit codes shared by every command (see STYLE.md). */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  notLoggedIn: 4,
  connection: 255,
  cancelled: 130,
} as const;

/** Options every Postern error accepts. */
export interface PosternErrorOptions {
  hint?: string;
  cause?: unknown;
  exitCode?: number;
  /** HTTP status the API answers with when this error crosses the wire. */
  status?: number;
}

/** Base class of every error Postern raises on purpose. */
export class PosternError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly exitCode: number;
  readonly status: number;

  constructor(code: string, message: string, options: PosternErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? ExitCode.failure;
    this.status = options.status ?? 500;
  }
}

/** Bad flags or arguments: exit 2. */
export class UsageError extends PosternError {
  constructor(message: string, options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_USAGE', message, { exitCode: ExitCode.usage, status: 400, ...options });
  }
}

/** A request or file that does not have the shape it must have. */
export class ValidationError extends PosternError {
  constructor(message: string, options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_INVALID', message, { status: 400, ...options });
  }
}

/** There is no usable login on this machine. */
export class NotLoggedInError extends PosternError {
  constructor(message = 'not logged in', options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_NOT_LOGGED_IN', message, {
      exitCode: ExitCode.notLoggedIn,
      status: 401,
      hint: 'Log in with:  postern login --proxy HOST --user NAME',
      ...options,
    });
  }
}

/** The stored certificate has expired. */
export class CertificateExpiredError extends PosternError {
  constructor(message: string, options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_CERT_EXPIRED', message, {
      exitCode: ExitCode.notLoggedIn,
      status: 401,
      hint: 'Log in again with:  postern login',
      ...options,
    });
  }
}

/** Wrong user, password or second factor; never says which. */
export class AccessDeniedError extends PosternError {
  constructor(message = 'access denied', options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_ACCESS_DENIED', message, { status: 403, ...options });
  }
}

/** Credentials were wrong. The message never says which part was wrong. */
export class BadCredentialsError extends PosternError {
  constructor(options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_BAD_CREDENTIALS', 'invalid user name, password or second factor', {
      status: 401,
      hint: 'Check the user name, the password and the current code from your authenticator app',
      ...options,
    });
  }
}

/** A one-time code that was already used. */
export class OtpReplayError extends PosternError {
  constructor(options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_OTP_REUSED', 'this one-time code was already used', {
      status: 401,
      hint: 'Wait for the next code from your authenticator app and try again',
      ...options,
    });
  }
}

/** Too many failed logins: the user is locked until a time. */
export class UserLockedError extends PosternError {
  readonly lockedUntil: Date;
  constructor(lockedUntil: Date, options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_USER_LOCKED', `too many failed logins: the user is locked until ${lockedUntil.toISOString()}`, {
      status: 429,
      hint: 'Wait until then, or ask an admin to run:  postern users unlock NAME',
      ...options,
    });
    this.lockedUntil = lockedUntil;
  }
}

/** Too many attempts in a short time: 429 with the time to wait (the Retry-After header). */
export class RateLimitedError extends PosternError {
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number, options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_RATE_LIMITED', message, { status: 429, hint: `Wait ${Math.ceil(retryAfterMs / 1000)} s and try again`, ...options });
    this.retryAfterMs = retryAfterMs;
  }

  /** The whole seconds to wait, as Retry-After says them. */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil(this.retryAfterMs / 1000));
  }
}

/** An invite that does not exist, has expired or was already used. */
export class InviteInvalidError extends PosternError {
  constructor(message: string, options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_INVITE_INVALID', message, {
      status: 404,
      hint: 'Ask an admin for a new invite:  postern users reset NAME',
      ...options,
    });
  }
}

/** Something that was asked for does not exist. */
export class NotFoundError extends PosternError {
  constructor(message: string, options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_NOT_FOUND', message, { status: 404, ...options });
  }
}

/** Something that must be unique already exists. */
export class AlreadyExistsError extends PosternError {
  constructor(message: string, options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_ALREADY_EXISTS', message, { status: 409, ...options });
  }
}

/** A compare-and-swap lost against a concurrent writer. */
export class ConflictError extends PosternError {
  constructor(message: string, options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_CONFLICT', message, { status: 409, ...options });
  }
}

/** Configuration that cannot be used (bad file, bad flag value, port in use). */
export class ConfigError extends PosternError {
  constructor(message: string, options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_CONFIG', message, { exitCode: ExitCode.failure, ...options });
  }
}

/** A network peer could not be reached or broke the connection. */
export class ConnectionError extends PosternError {
  constructor(message: string, options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_CONNECTION', message, { exitCode: ExitCode.connection, status: 502, ...options });
  }
}

/** The server's TLS certificate could not be trusted. */
export class TlsTrustError extends PosternError {
  constructor(message: string, options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_TLS_UNTRUSTED', message, {
      exitCode: ExitCode.connection,
      hint: 'Pass the pin printed by `postern serve` with --ca-pin sha256:…, or --insecure for a test cluster',
      ...options,
    });
  }
}

/** A certificate or key that failed a check; `code` says which check. */
export class CertificateError extends PosternError {
  constructor(code: string, message: string, options: PosternErrorOptions = {}) {
    super(code, message, { status: 400, ...options });
  }
}

/** The user pressed Ctrl-C or declined a prompt. */
export class CancelledError extends PosternError {
  constructor(message = 'cancelled', options: PosternErrorOptions = {}) {
    super('ERR_POSTERN_CANCELLED', message, { exitCode: ExitCode.cancelled, ...options });
  }
}

/** Turns anything thrown into a PosternError, keeping the original as the cause. */
export function toPosternError(err: unknown): PosternError {
  if (err instanceof PosternError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new PosternError('ERR_POSTERN_INTERNAL', message.toLowerCase().replace(/\.$/, ''), { cause: err });
}

/**
 * The same error ending with exit status 255, as OpenSSH's `ssh` and a ProxyCommand end when
 * the connection fails (a cancel keeps its own status); anything else is returned as it is.
 */
export function asConnectionFailure(err: unknown): unknown {
  if (err instanceof PosternError && err.exitCode !== ExitCode.connection && err.exitCode !== ExitCode.cancelled) {
    return new PosternError(err.code, err.message, { exitCode: ExitCode.connection, status: err.status, cause: err, ...(err.hint ? { hint: err.hint } : {}) });
  }
  return err;
}

/**
 * What every group of auth's calls shares: the context they run in, and the shape of a
 * handler, typed against AuthClient so a handler takes and returns what the contract says.
 */
import type { Backend } from '../../storage/backend.ts';
import type { Clock } from '../../core/clock.ts';
import type { AuthCallName, AuthClient } from '../../api/auth-client.ts';
import type { Identity } from '../../api/auth-types.ts';
import type { NewAuditEvent } from '../../api/audit.ts';
import type { LoginThrottle } from '../login-throttle.ts';

/** What the calls need of AuthServer. */
export interface CallContext {
  backend: Backend;
  clock: Clock;
  clusterName: string;
  /** log2 of scrypt's N for new password hashes (passwords.ts). */
  passwordCost: number;
  /** Writes an audit event; a failure to write is logged and thrown. */
  audit(event: NewAuditEvent): Promise<void>;
  /** The login throttle of this auth server (per source and per name, before any hashing). */
  throttle: LoginThrottle;
  /** Called just before a password is hashed and compared (tests count the checks under load). */
  onPasswordCheck?: (user: string) => void;
}

/** The argument of a call as AuthClient declares it (an empty object for calls without one). */
export type CallArg<K extends AuthCallName> = Parameters<AuthClient[K]> extends [infer A, ...unknown[]] ? A : Record<string, never>;

/**
 * One call: the caller's identity and the call's argument. The argument comes off the wire
 * as it was sent, so each handler checks it on entry; who may call is checked before.
 */
export type Handler<K extends AuthCallName> = (id: Identity, arg: CallArg<K>) => ReturnType<AuthClient[K]>;

/** Handlers of some calls, by name. */
export type Handlers<K extends AuthCallName> = { [P in K]: Handler<P> };

/** Every call's handler: what AuthServer dispatches on. */
export type HandlerTable = Handlers<AuthCallName>;

/** The client's address when the caller gave one as a string. */
export function clientAddr(req: { clientAddr?: unknown } | undefined): string | undefined {
  return typeof req?.clientAddr === 'string' ? req.clientAddr : undefined;
}

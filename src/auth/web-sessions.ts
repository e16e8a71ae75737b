/**
 * Web sessions: what a login on the web UI makes. Each has its own ed25519 key pair and a
 * user certificate for it, both kept here: the proxy signs through auth's agent
 * (webSessionAgent) and never sees the private key. The browser holds only the session id
 * (its cookie) and a CSRF token; storage holds the SHA-256 of the id, never the id, and the
 * record expires with the session.
 */
import { lockFor } from './locks.ts';
import { lockMessage } from '../api/locks.ts';
import { createHash, randomBytes } from 'node:crypto';
import type { Backend } from '../storage/backend.ts';
import { getUser } from './users.ts';
import { encodePrivateKeyOpenSSH, generateKeyPair, parsePrivateKeyOpenSSH } from '../ssh/keys.ts';
import type { AgentKey } from '../ssh/agent-server.ts';
import { BadCredentialsError, OtpReplayError, PosternError, UserLockedError, ValidationError } from '../core/errors.ts';
import type { WebSessionInfo } from '../api/types.ts';

/** A web session lasts this long unless max_session_ttl is shorter. */
export const WEB_SESSION_TTL_MS = 12 * 3_600_000;

/** What storage keeps of a web session. */
export interface WebSessionRecord extends WebSessionInfo {
  /** The session's private key, OpenSSH format. */
  privateKey: string;
  /** The certificate's wire blob, base64. */
  certificate: string;
  /** The account generation the session was made for (users.ts). */
  account?: string;
}

/** An unknown, expired or revoked session: 401, log in again. */
export class SessionExpiredError extends PosternError {
  constructor(message = 'your web session has expired or was ended') {
    super('ERR_POSTERN_SESSION_EXPIRED', message, { status: 401, exitCode: 4, hint: 'Log in again' });
  }
}

/**
 * A failed web login, whatever was wrong (user, password, code, a reused code): 401
 * ERR_POSTERN_LOGIN_FAILED, one message, as the web API promises.
 */
export class LoginFailedError extends PosternError {
  constructor() {
    super('ERR_POSTERN_LOGIN_FAILED', 'invalid user name, password or second factor', { status: 401, exitCode: 4, hint: 'Check them and try again with a new code from your authenticator app' });
  }
}

/** What a web login answers for a credential error: LoginFailedError, or 403 with lockedUntil for a locked user. */
export function webLoginError(err: unknown): unknown {
  if (err instanceof UserLockedError) return new UserLockedError(err.lockedUntil, { status: 403 });
  if (err instanceof BadCredentialsError || err instanceof OtpReplayError) return new LoginFailedError();
  return err;
}

const key = (sessionId: string): string => `web_sessions/${createHash('sha256').update(sessionId).digest('hex')}`;

/** A fresh key pair for a new session. */
export function newSessionKey(): { privateKey: string; publicWire: Buffer } {
  const pair = generateKeyPair();
  return { privateKey: encodePrivateKeyOpenSSH(pair, 'postern web session'), publicWire: pair.publicWire };
}

/** Stores a session; returns its secret id. */
export async function createWebSession(backend: Backend, rec: WebSessionRecord): Promise<string> {
  const sessionId = randomBytes(32).toString('base64url');
  await backend.create(key(sessionId), JSON.stringify(rec), { expires: new Date(rec.expiresAt) });
  return sessionId;
}

/** A live session by id; throws SessionExpiredError otherwise. */
export async function getWebSession(backend: Backend, sessionId: unknown, now: Date): Promise<WebSessionRecord> {
  if (typeof sessionId !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(sessionId)) throw new SessionExpiredError();
  const item = await backend.get(key(sessionId));
  if (!item) throw new SessionExpiredError();
  const rec = JSON.parse(item.value) as WebSessionRecord;
  if (Date.parse(rec.expiresAt) <= now.getTime()) throw new SessionExpiredError();
  // Bound to the account as it was at login: a reset or a re-created name ends it even if a delete was missed.
  const user = await getUser(backend, rec.user);
  if (!user || (user.account ?? '') !== (rec.account ?? '')) throw new SessionExpiredError();
  // A lock on the user or one of their roles ends the session too (locks.ts), saying why.
  const lock = await lockFor(backend, { user: user.name, roles: user.roles }, now);
  if (lock) throw new SessionExpiredError(`your web session was ended: ${lockMessage(lock)}`);
  return rec;
}

/** Ends every session of a user (reset, removal); returns how many. */
export async function deleteUserSessions(backend: Backend, user: string): Promise<number> {
  let n = 0;
  for (const item of await backend.getRange('web_sessions/')) {
    if ((JSON.parse(item.value) as WebSessionRecord).user === user && (await backend.delete(item.key))) n++;
  }
  return n;
}

/** Ends a session; false when there was none. */
export async function deleteWebSession(backend: Backend, sessionId: unknown): Promise<boolean> {
  if (typeof sessionId !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(sessionId)) return false;
  return backend.delete(key(sessionId));
}

/** The session's key as the agent serves it. */
export function sessionAgentKey(rec: WebSessionRecord): AgentKey {
  const pair = parsePrivateKeyOpenSSH(rec.privateKey);
  return { privateKey: pair.privateKey, publicWire: pair.publicWire, certificateWire: Buffer.from(rec.certificate, 'base64'), comment: `${rec.user}@postern-web` };
}

/** The public view of a record (no key, no certificate). */
export function sessionInfo(rec: WebSessionRecord): WebSessionInfo {
  return { user: rec.user, roles: rec.roles, logins: rec.logins, isAdmin: rec.isAdmin, csrfToken: rec.csrfToken, createdAt: rec.createdAt, expiresAt: rec.expiresAt };
}

/** Checks a base64 agent message on entry. */
export function decodeAgentMessage(message: unknown): Buffer {
  if (typeof message !== 'string' || message.length > 350_000 || !/^[A-Za-z0-9+/]*={0,2}$/.test(message)) throw new ValidationError('message must be a base64 agent request');
  return Buffer.from(message, 'base64');
}

/**
 * Who a web request comes from: a browser with the session cookie, or the CLI with a
 * request signed by the user's certificate key (cert-auth.ts). For the browser:
 *
 * - the cookie `__Host-postern_session` is HttpOnly, Secure, SameSite=Strict, Path=/, and
 *   expires with the session; its value is the session id auth gave out once;
 * - every state-changing request (POST, PUT, DELETE, PATCH) must carry the session's CSRF
 *   token in `x-csrf-token` (403 otherwise);
 * - a websocket must come from this very origin (`Origin: https://<Host>`), else 403 before
 *   the upgrade: SameSite does not cover websockets.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WebSessionInfo } from '../api/types.ts';
import type { WebSessionAuth } from '../api/proxy-auth.ts';
import { PosternError } from '../core/errors.ts';
import type { CertAuthenticator } from './cert-auth.ts';

/** The session cookie's name (the `__Host-` prefix pins it to this host, Secure, Path=/). */
export const SESSION_COOKIE = '__Host-postern_session';

/** A browser request's session. */
export interface CookieCaller {
  via: 'cookie';
  user: string;
  sessionId: string;
  session: WebSessionInfo;
}

/** A CLI request's signer. */
export interface CertRequestCaller {
  via: 'cert';
  user: string;
}

/** Either kind of caller. */
export type WebCaller = CookieCaller | CertRequestCaller;

/** No session: 401 with the hint to log in. */
export class NotAuthenticatedError extends PosternError {
  constructor(message = 'you are not logged in') {
    super('ERR_POSTERN_SESSION_EXPIRED', message, { status: 401, exitCode: 4, hint: 'Log in again' });
  }
}

const UNSAFE = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);

/** Reads one cookie from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The Set-Cookie value for a session (or one that clears it). */
export function sessionCookie(sessionId: string | undefined, expiresAt?: string): string {
  const expires = sessionId ? new Date(expiresAt ?? Date.now()) : new Date(0);
  return `${SESSION_COOKIE}=${sessionId ?? ''}; Path=/; HttpOnly; Secure; SameSite=Strict; Expires=${expires.toUTCString()}`;
}

/** Authenticates web requests for the routes. */
export class WebAuth {
  private readonly auth: WebSessionAuth;
  private readonly certAuth: Pick<CertAuthenticator, 'authenticate'>;

  constructor(auth: WebSessionAuth, certAuth: Pick<CertAuthenticator, 'authenticate'>) {
    this.auth = auth;
    this.certAuth = certAuth;
  }

  /** The browser's session; NotAuthenticatedError (401) without a valid cookie. CSRF is checked for unsafe methods. */
  async session(req: FastifyRequest): Promise<CookieCaller> {
    const sessionId = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (!sessionId) throw new NotAuthenticatedError();
    const session = await this.auth.getWebSession({ sessionId });
    if (UNSAFE.has(req.method)) {
      const sent = Buffer.from(String(req.headers['x-csrf-token'] ?? ''));
      const want = Buffer.from(session.csrfToken);
      if (sent.length !== want.length || !timingSafeEqual(sent, want)) {
        throw new PosternError('ERR_POSTERN_CSRF', 'this request lacks the CSRF token of your session', { status: 403, hint: 'Reload the page' });
      }
    }
    return { via: 'cookie', user: session.user, sessionId, session };
  }

  /** A signed CLI request, or else the browser's session. */
  async caller(req: FastifyRequest): Promise<WebCaller> {
    const authz = req.headers.authorization;
    if (authz && /^Postern-Cert /i.test(authz)) {
      const c = await this.certAuth.authenticate(req.method, req.url, authz, req.ip);
      return { via: 'cert', user: c.user };
    }
    return this.session(req);
  }
}

/** Whether a request's Origin is this server's own (websockets). */
export function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  const host = req.headers.host;
  return typeof origin === 'string' && typeof host === 'string' && origin === `https://${host}`;
}

/** Sets the session cookie on a reply. */
export function setSessionCookie(reply: FastifyReply, sessionId: string | undefined, expiresAt?: string): void {
  void reply.header('set-cookie', sessionCookie(sessionId, expiresAt));
}

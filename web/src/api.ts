// The web API as the UI uses it: JSON, the session cookie (set by the proxy, HttpOnly),
// and the CSRF token on every state-changing request.

/** An API error with the proxy's code, message and hint. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly hint?: string;
  readonly lockedUntil?: string;
  constructor(status: number, body: { error?: { code?: string; message?: string; hint?: string; lockedUntil?: string } } | undefined) {
    super(body?.error?.message ?? `request failed (${status})`);
    this.status = status;
    this.code = body?.error?.code ?? 'ERR_POSTERN_HTTP';
    this.hint = body?.error?.hint;
    this.lockedUntil = body?.error?.lockedUntil;
  }
}

/** The signed-in user, as GET /webapi/sessions/web returns it (the API contract's type). */
export type { WebSessionInfo as Me } from '../../src/api/types.ts';

let csrf = '';

/** Remembers the CSRF token of the session. */
export function setCsrf(token: string): void {
  csrf = token;
}

/** Calls the API; throws ApiError for a 4xx/5xx. A 401 also tells the app the session is gone. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrf;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await res.text();
  let json: unknown;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  if (!res.ok) {
    const err = new ApiError(res.status, json as never);
    if (res.status === 401 && path !== '/webapi/sessions/web') window.dispatchEvent(new CustomEvent('postern:logged-out', { detail: err.message }));
    throw err;
  }
  return json as T;
}

/** A message for a failed call: the message and the hint. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    const until = err.lockedUntil ? ` (until ${new Date(err.lockedUntil).toLocaleString()})` : '';
    return `${err.message}${until}${err.hint ? `. ${err.hint}` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}

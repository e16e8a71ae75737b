/** Join tokens: short-lived secrets with which a new proxy gets its identity from auth. */
import { randomBytes, createHash } from 'node:crypto';
import type { Backend } from '../storage/backend.ts';
import { getJson } from '../storage/backend.ts';
import { AccessDeniedError } from '../core/errors.ts';

/** A join token as stored (only its hash is the key). */
export interface TokenRecord {
  type: 'proxy';
  expiresAt: string;
  createdAt: string;
}

const tokenKey = (token: string): string => `tokens/${createHash('sha256').update(token).digest('hex')}`;

/** Makes a token of a type; it may be used until it expires. */
export async function createToken(backend: Backend, type: 'proxy', ttlMs: number, now: Date): Promise<{ token: string; expiresAt: Date }> {
  const token = randomBytes(24).toString('hex');
  const expiresAt = new Date(now.getTime() + ttlMs);
  await backend.create(tokenKey(token), JSON.stringify({ type, expiresAt: expiresAt.toISOString(), createdAt: now.toISOString() } satisfies TokenRecord), { expires: expiresAt });
  return { token, expiresAt };
}

/** Checks a token for a type; AccessDeniedError (which says nothing more) otherwise. */
export async function checkToken(backend: Backend, token: string, type: 'proxy', now: Date): Promise<TokenRecord> {
  const rec = /^[0-9a-f]{16,128}$/.test(token) ? await getJson<TokenRecord>(backend, tokenKey(token)) : undefined;
  if (!rec || rec.type !== type || new Date(rec.expiresAt) <= now) {
    throw new AccessDeniedError('the join token is invalid or expired', { hint: 'Make a new one on the auth server with:  postern tokens add --type proxy' });
  }
  return rec;
}

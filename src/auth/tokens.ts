/** Join tokens: short-lived secrets with which a new proxy gets its identity from auth. */
import { randomBytes, createHash } from 'node:crypto';
import type { Backend } from '../storage/backend.ts';
import { getJson } from '../storage/backend.ts';
import { AccessDeniedError, NotFoundError, ValidationError } from '../core/errors.ts';

/** A join token as stored (only its hash is the key). */
export interface TokenRecord {
  type: 'proxy';
  expiresAt: string;
  createdAt: string;
}

const tokenKey = (token: string): string => `tokens/${createHash('sha256').update(token).digest('hex')}`;

/** Makes a token of a type; it may be used once, until it expires. */
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

/**
 * Checks a token and uses it up: it is deleted, and only the caller whose delete removed it
 * may go on, so a token joins exactly one proxy even when several try at once.
 */
export async function consumeToken(backend: Backend, token: string, type: 'proxy', now: Date): Promise<TokenRecord> {
  const rec = await checkToken(backend, token, type, now);
  if (!(await backend.delete(tokenKey(token)))) {
    throw new AccessDeniedError('the join token is invalid or expired', { hint: 'Make a new one on the auth server with:  postern tokens add --type proxy' });
  }
  return rec;
}

/** The id `listTokens` shows for a stored key: the first 16 hex digits of the token's hash. */
const idOfKey = (key: string): string => key.slice('tokens/'.length, 'tokens/'.length + 16);

/** The live tokens, soonest to expire first, by id (the token itself is never stored). */
export async function listTokens(backend: Backend, now: Date): Promise<Array<TokenRecord & { id: string }>> {
  return (await backend.getRange('tokens/'))
    .map((i) => ({ id: idOfKey(i.key), ...(JSON.parse(i.value) as TokenRecord) }))
    .filter((t) => new Date(t.expiresAt) > now)
    .sort((a, b) => a.expiresAt.localeCompare(b.expiresAt));
}

/**
 * Deletes a token named by its id (a prefix of its hash, at least 8 hex digits, that only
 * it has) or by the token itself; NotFoundError when none matches, ValidationError when the
 * prefix is shared.
 */
export async function deleteToken(backend: Backend, idOrToken: string): Promise<void> {
  if (!/^[0-9a-f]{8,128}$/.test(idOrToken)) {
    throw new ValidationError(`invalid token id "${idOrToken}"`, { hint: 'Give the ID that  postern tokens ls  shows (or the token itself)' });
  }
  const byToken = tokenKey(idOrToken);
  if (await backend.delete(byToken)) return;
  const matches = (await backend.getRange('tokens/')).filter((i) => i.key.slice('tokens/'.length).startsWith(idOrToken));
  if (matches.length === 0) throw new NotFoundError(`no join token with id ${idOrToken}`, { hint: 'List them with:  postern tokens ls' });
  if (matches.length > 1) throw new ValidationError(`the id ${idOrToken} names ${matches.length} tokens`, { hint: `Give more of it: ${matches.map((m) => idOfKey(m.key)).join(', ')}` });
  await backend.delete(matches[0].key);
}

/**
 * Invites: a one-time secret link with which a new (or reset) user sets a password and
 * enrols a second factor. Only the SHA-256 of the secret is stored.
 */
import { randomBytes, createHash } from 'node:crypto';
import type { Backend } from '../storage/backend.ts';
import { getJson } from '../storage/backend.ts';
import { InviteInvalidError } from '../core/errors.ts';

/** An invite as stored. */
export interface InviteRecord {
  user: string;
  expiresAt: string;
  /** The TOTP secret auth proposed for this invite. */
  totpSecret: string;
}

const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');
const inviteKey = (token: string): string => `invites/${hashToken(token)}`;

/** Creates an invite for a user, revoking the user's earlier ones; returns the secret token. */
export async function createInvite(backend: Backend, user: string, ttlMs: number, totpSecret: string, now: Date): Promise<{ token: string; expiresAt: Date }> {
  await revokeInvites(backend, user);
  const token = randomBytes(24).toString('base64url');
  const expiresAt = new Date(now.getTime() + ttlMs);
  const rec: InviteRecord = { user, expiresAt: expiresAt.toISOString(), totpSecret };
  await backend.create(inviteKey(token), JSON.stringify(rec), { expires: expiresAt });
  await backend.put(`invites-by-user/${user}`, hashToken(token), { expires: expiresAt });
  return { token, expiresAt };
}

/** Reads a live invite; InviteInvalidError when it does not exist, was used or expired. */
export async function getInvite(backend: Backend, token: string, now: Date): Promise<InviteRecord> {
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(token)) throw new InviteInvalidError('the invite link is not valid');
  const rec = await getJson<InviteRecord>(backend, inviteKey(token));
  if (!rec) throw new InviteInvalidError('the invite is unknown, already used or expired');
  if (new Date(rec.expiresAt) <= now) throw new InviteInvalidError(`the invite expired at ${rec.expiresAt}`);
  return rec;
}

/** Marks an invite used; returns false when someone used it first. */
export async function consumeInvite(backend: Backend, token: string): Promise<boolean> {
  return backend.delete(inviteKey(token));
}

/** Revokes whatever invite the user has open. */
export async function revokeInvites(backend: Backend, user: string): Promise<void> {
  const item = await backend.get(`invites-by-user/${user}`);
  if (item) {
    await backend.delete(`invites/${item.value}`);
    await backend.delete(`invites-by-user/${user}`);
  }
}

/**
 * The nonces of signed web API requests (proxy/cert-auth.ts), single-use across the whole
 * cluster: each one is stored under `nonces/<nonce>` until the request's signature window
 * ends, by an insert that fails when the key is live (Backend.create, atomic on SQLite and
 * PostgreSQL). So a request replayed on another proxy, or on the same proxy after a
 * restart, is refused as long as its timestamp is still accepted; after that the
 * timestamp check refuses it, and the item has expired.
 */
import type { Backend } from '../storage/backend.ts';
import { key } from '../storage/backend.ts';
import { AlreadyExistsError, PosternError } from '../core/errors.ts';

/** A nonce seen before: 401, as every refused request signature (same code as cert-auth's). */
export class NonceReplayError extends PosternError {
  constructor() {
    super('ERR_POSTERN_REQUEST_AUTH', 'this request was already used (replayed nonce)', { status: 401, exitCode: 4, hint: 'Send a new request: each signed request is good once' });
  }
}

/** Stores a nonce until `expires`; NonceReplayError when it is already stored (on any proxy). */
export async function claimNonce(backend: Backend, nonce: string, user: string, expires: Date): Promise<void> {
  try {
    await backend.create(key('nonces', nonce), user, { expires });
  } catch (err) {
    if (err instanceof AlreadyExistsError) throw new NonceReplayError();
    throw err;
  }
}

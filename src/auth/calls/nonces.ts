/**
 * Signed web API requests: each proxy hands auth the nonce of every request whose signature
 * it verified. Auth limits them per user and per source address (token buckets, as the
 * login throttle: one user's flood drains only that user's and that address's buckets,
 * never another's) and stores the nonce once for the cluster (nonces.ts).
 */
import { ValidationError } from '../../core/errors.ts';
import { getSettings } from '../settings.ts';
import { LoginThrottle } from '../login-throttle.ts';
import { claimNonce } from '../nonces.ts';
import { str } from '../args.ts';
import type { CallContext, Handlers } from './context.ts';

/** The longest a nonce is kept: a request's signature window (±5 min) and then some. */
const MAX_NONCE_LIFE_MS = 11 * 60_000;

/** The handler of claimNonce. */
export function nonceCalls(ctx: CallContext): Handlers<'claimNonce'> {
  const throttle = new LoginThrottle();
  return {
    async claimNonce(_id, req) {
      const nonce = str(req.nonce, 'nonce');
      const user = str(req.user, 'user');
      if (!/^[0-9a-f]{16,128}$/.test(nonce)) throw new ValidationError('nonce must be 16 to 128 lower-case hex digits');
      const now = ctx.clock.now();
      const expiresAt = Number(req.expiresAt);
      if (!Number.isFinite(expiresAt) || expiresAt > now.getTime() + MAX_NONCE_LIFE_MS) throw new ValidationError('expiresAt must be a time within the next 11 minutes');
      // Already outside the window: the proxy's timestamp check refuses such a request.
      if (expiresAt <= now.getTime()) return;
      const s = await getSettings(ctx.backend);
      const addr = typeof req.clientAddr === 'string' && req.clientAddr !== '' ? req.clientAddr : undefined;
      throttle.take({ addr, user, action: 'signed request' }, now, { perSource: s.signed_rate_per_source, perUser: s.signed_rate_per_user });
      await claimNonce(ctx.backend, nonce, user, new Date(expiresAt));
    },
  };
}

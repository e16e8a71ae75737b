/**
 * Login throttling: token buckets per source address and per user name, taken before any
 * password is hashed, so a flood of logins cannot take the CPU from real ones. It lives in
 * the memory of each auth server on purpose: what it protects is that server's CPU, and a
 * counter in storage would cost a write per attempt. The hard limit per user across auth
 * servers is the lockout (users.ts, in storage).
 */
import { RateLimitedError } from '../core/errors.ts';

/** How many attempts a bucket allows per minute (also its burst); 0 turns it off. */
export interface ThrottleLimits {
  perSource: number;
  perUser: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** At most this many buckets are kept; beyond it, full ones are forgotten first, then all. */
const MAX_BUCKETS = 100_000;

/** An IPv4-mapped IPv6 address is its IPv4 address; other addresses as given. */
function sourceKey(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr.toLowerCase();
}

/** The buckets of one auth server. */
export class LoginThrottle {
  private readonly buckets = new Map<string, Bucket>();

  /**
   * Takes one attempt for the source and the name; throws RateLimitedError (429, with the
   * seconds to wait) when either bucket is empty. An unknown source (a call with no client
   * address) is not limited by source.
   */
  take(what: { addr?: string; user?: string; action: string }, now: Date, limits: ThrottleLimits): void {
    const t = now.getTime();
    if (what.addr && limits.perSource > 0) {
      const wait = this.takeOne(`s/${sourceKey(what.addr)}`, t, limits.perSource);
      if (wait > 0) {
        throw new RateLimitedError(`too many ${what.action} attempts from ${what.addr}`, wait, {
          hint: `Wait ${Math.ceil(wait / 1000)} s and try again; at most ${limits.perSource} per minute are allowed from one address`,
        });
      }
    }
    if (what.user && limits.perUser > 0) {
      const wait = this.takeOne(`u/${what.user}`, t, limits.perUser);
      if (wait > 0) {
        throw new RateLimitedError(`too many ${what.action} attempts for this user name`, wait, {
          hint: `Wait ${Math.ceil(wait / 1000)} s and try again; at most ${limits.perUser} per minute are allowed for one user name`,
        });
      }
    }
  }

  /** Takes a token; returns 0, or the ms until one is back. */
  private takeOne(key: string, t: number, perMinute: number): number {
    const rate = perMinute / 60_000;
    const b = this.buckets.get(key);
    const tokens = b ? Math.min(perMinute, b.tokens + Math.max(0, t - b.at) * rate) : perMinute;
    if (tokens < 1) {
      this.buckets.set(key, { tokens, at: t });
      return Math.ceil((1 - tokens) / rate);
    }
    if (!b && this.buckets.size >= MAX_BUCKETS) this.prune(t);
    this.buckets.set(key, { tokens: tokens - 1, at: t });
    return 0;
  }

  private prune(t: number): void {
    for (const [k, b] of this.buckets) if (t - b.at > 60_000) this.buckets.delete(k);
    if (this.buckets.size >= MAX_BUCKETS) this.buckets.clear();
  }
}

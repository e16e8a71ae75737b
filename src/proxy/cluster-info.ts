/**
 * The cluster's facts as the proxy uses them (name, user and host CA keys, where sessions
 * are recorded), asked of auth's `ping` and kept for a few seconds. One per proxy, shared
 * by the SSH listener, the recording proxy, the tunnel, the web API's certificate check,
 * the web terminal and GET /webapi/ping, so they agree and auth is asked once for all.
 *
 * Short, because it also carries `session_recording`: a switch to recording takes effect
 * within {@link CLUSTER_INFO_MAX_AGE_MS}. No caller keeps them longer: with several auth
 * servers and proxies (docs/ha.md), a change made through any auth server is in force at
 * every proxy within 5 s. One that must be current passes 0.
 *
 * It also answers, for every surface that lets a user certificate in, whether the account
 * the certificate was issued to is still live (auth's checkAccount: not reset, not removed
 * and re-created), kept {@link ACCOUNT_CHECK_MAX_AGE_MS} so a reset bites within seconds at
 * every proxy. When auth cannot answer and nothing fresh is kept, it refuses.
 */
import type { ClusterInfo } from '../api/auth-types.ts';
import type { ClusterInfoAuth } from '../api/proxy-auth.ts';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';
import { parseAuthorizedKey } from '../ssh/keys.ts';
import type { SshCertificate } from '../ssh/certs.ts';
import { LockedError } from '../api/locks.ts';
import { AccountRevokedError } from '../api/refusals.ts';
import { LiveConnections } from './live-conns.ts';
import type { LiveConnsAuth } from './live-conns.ts';

/** How old the facts may be by default. */
export const CLUSTER_INFO_MAX_AGE_MS = 5_000;

/** How long an answer of checkAccount is kept: a reset takes effect at a proxy within this. */
export const ACCOUNT_CHECK_MAX_AGE_MS = 2_000;

/** The certificate extension that names the account generation (auth's ssh-ca.ts puts it in). */
export const ACCOUNT_EXTENSION = 'postern-account@postern.dev';

/** At most this many account answers are kept; the oldest go first. */
const MAX_ACCOUNT_ENTRIES = 10_000;


/** The account generation a certificate carries ('' for none). */
export function accountOf(cert: SshCertificate): string {
  return cert.extensions[ACCOUNT_EXTENSION] ?? '';
}

/** What a ping says, with the CA keys already parsed to wire blobs. */
export interface ClusterFacts {
  info: ClusterInfo;
  name: string;
  /** The user CA's public keys, wire blobs. */
  userCaKeys: Buffer[];
  /** The host CA's public keys, wire blobs. */
  hostCaKeys: Buffer[];
  sessionRecording: ClusterInfo['sessionRecording'];
}

/** The CA keys a ping returns, as wire blobs. */
export function caWires(lines: string[]): Buffer[] {
  return lines.map((l) => parseAuthorizedKey(l).wire);
}

/** The one cached source of cluster facts of a proxy. */
export class ClusterInfoSource {
  private readonly auth: ClusterInfoAuth;
  private readonly clock: Clock;
  private cached: { facts: ClusterFacts; at: number } | undefined;
  private inflight: Promise<ClusterFacts> | undefined;
  private readonly accounts = new Map<string, { valid: boolean; reason?: string; at: number }>();
  private readonly accountInflight = new Map<string, Promise<{ valid: boolean; reason?: string; locked?: boolean }>>();
  /** The live connections of this proxy, checked against auth while open (live-conns.ts): every surface that carries one adds it here. */
  readonly live: LiveConnections;

  /** `clock` dates the cache; the system clock unless a test fakes it. */
  constructor(auth: ClusterInfoAuth, options: { clock?: Clock } = {}) {
    this.auth = auth;
    this.clock = options.clock ?? systemClock;
    // The proxy's AuthClient can also audit the cuts; a test's small fake need not.
    this.live = new LiveConnections(auth as LiveConnsAuth, { clock: this.clock });
  }

  /** The facts, asked of auth when the cached ones are older than `maxAgeMs` (or from the future). */
  async get(maxAgeMs = CLUSTER_INFO_MAX_AGE_MS): Promise<ClusterFacts> {
    const now = this.clock.now().getTime();
    const hit = this.cached;
    if (hit && now - hit.at < maxAgeMs && now >= hit.at) return hit.facts;
    // Callers that ask at once share one ping.
    this.inflight ??= this.auth.ping().then((info) => {
      const facts: ClusterFacts = {
        info, name: info.clusterName, userCaKeys: caWires(info.userCaKeys), hostCaKeys: caWires(info.hostCaKeys), sessionRecording: info.sessionRecording,
      };
      this.cached = { facts, at: now };
      return facts;
    }).finally(() => { this.inflight = undefined; });
    return this.inflight;
  }

  /**
   * Throws AccountRevokedError unless the certificate's account is live: its user (key id)
   * exists and has the generation the certificate carries (none on certificates issued
   * before generations). Asks auth at most every {@link ACCOUNT_CHECK_MAX_AGE_MS} per
   * account; with auth unreachable and no fresh answer kept, refuses (fail closed).
   */
  async checkAccount(cert: SshCertificate): Promise<void> {
    const user = cert.keyId;
    const account = accountOf(cert);
    const key = `${user}\0${account}`;
    const now = this.clock.now().getTime();
    const hit = this.accounts.get(key);
    let answer: { valid: boolean; reason?: string; locked?: boolean };
    if (hit && now - hit.at < ACCOUNT_CHECK_MAX_AGE_MS && now >= hit.at) {
      answer = hit;
    } else {
      let pending = this.accountInflight.get(key);
      if (!pending) {
        pending = this.auth.checkAccount({ user, account }).finally(() => this.accountInflight.delete(key));
        this.accountInflight.set(key, pending);
      }
      try {
        answer = await pending;
      } catch (err) {
        throw new AccountRevokedError(`cannot check the account of "${user}" with auth, so the certificate is refused: ${(err as Error).message}`, { cause: err });
      }
      if (this.accounts.size >= MAX_ACCOUNT_ENTRIES) this.accounts.delete(this.accounts.keys().next().value!);
      this.accounts.delete(key);
      this.accounts.set(key, { ...answer, at: now });
    }
    if (!answer.valid && answer.locked) throw new LockedError(answer.reason ?? `user ${user} is locked`);
    if (!answer.valid) throw new AccountRevokedError(`the certificate of "${user}" no longer belongs to a live account: ${answer.reason ?? 'revoked'}`);
  }
}

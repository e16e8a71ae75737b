/**
 * The cluster's facts as the proxy uses them (name, user and host CA keys, where sessions
 * are recorded), asked of auth's `ping` and kept for a few seconds. One per proxy, shared
 * by the SSH listener, the recording proxy, the tunnel, the web API's certificate check,
 * the web terminal and GET /webapi/ping, so they agree and auth is asked once for all.
 *
 * Short, because it also carries `session_recording`: a switch to recording takes effect
 * within {@link CLUSTER_INFO_MAX_AGE_MS}. A caller that can live with older facts (the
 * web API's CA check) passes a longer age; one that must be current passes 0.
 */
import type { ClusterInfo } from '../api/auth-types.ts';
import type { ClusterInfoAuth } from '../api/proxy-auth.ts';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';
import { parseAuthorizedKey } from '../ssh/keys.ts';

/** How old the facts may be by default. */
export const CLUSTER_INFO_MAX_AGE_MS = 5_000;

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

  /** `clock` dates the cache; the system clock unless a test fakes it. */
  constructor(auth: ClusterInfoAuth, options: { clock?: Clock } = {}) {
    this.auth = auth;
    this.clock = options.clock ?? systemClock;
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
}

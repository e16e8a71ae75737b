/**
 * The live connections a proxy carries to nodes, in one registry: each surface (the SSH
 * listener's subsystem and `ssh -J` channels, recording-mode sessions, the TLS tunnel, the
 * web terminal) adds its connection with who it is for (user, account or web session,
 * login or the certificate's logins, node) and how to end it. While any is open, a sweep
 * asks auth every {@link LIVE_CHECK_INTERVAL_MS} whether each is still allowed (checkAccount
 * with the login and node, each answer kept {@link LIVE_ANSWER_MAX_AGE_MS}): a reset or
 * removed account or a lock that covers it ends the connection with a message that says
 * why ("session terminated: user alice is locked: …"), and the cut is audited.
 *
 * A participant who joined someone else's live session (`postern join`, the web UI's join,
 * either relayed from another proxy) is registered too, at the proxy their connection
 * reached, with the session's login and node: a cut removes only them ("removed from
 * session ID: user carol is locked: …"), and the session goes on for its owner.
 *
 * A connection is cut only on auth's answer: when auth cannot be reached, live connections
 * stay (new ones are refused, as cluster-info.ts fails closed).
 */
import type { AuthClient } from '../api/auth-client.ts';
import type { AccountCheck, AccountCheckResult } from '../api/auth-client.ts';
import type { ProxyAudit } from '../api/proxy-auth.ts';
import type { Logger } from '../core/logger.ts';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';

/** How often the sweep runs while connections are open. */
export const LIVE_CHECK_INTERVAL_MS = 1_000;

/** How long one answer is kept (as cluster-info.ts keeps account answers). */
export const LIVE_ANSWER_MAX_AGE_MS = 2_000;

/** One live connection, as a surface registers it. */
export interface LiveConn {
  /** The Postern user. */
  user: string;
  /** The certificate's account generation ('' for none); or `webSessionId` for the web terminal. */
  account?: string;
  webSessionId?: string;
  /** The OS login on the node, when the proxy knows it. */
  login?: string;
  /** The certificate's logins (for a login lock when `login` is unknown). */
  principals?: string[];
  /** The node's registered name, or the host. */
  node?: string;
  /** Which surface carries it, for the log and the audit event. */
  via: string;
  clientAddr?: string;
  /** The live session a joiner is in (for the log and the audit event). */
  sessionId?: string;
  /** What a cut ends, leading its message: 'session terminated' when not given. */
  ends?: string;
  /** Ends the connection, telling the user `message` where the surface can; `locked` when a lock (not a reset or removal) is why. */
  close(message: string, why: { locked: boolean }): void;
}

/** What the registry asks of auth (the audit of a cut when the client can emit). */
export type LiveConnsAuth = Pick<AuthClient, 'checkAccount'> & Partial<ProxyAudit>;

/** The registry of one proxy. */
export class LiveConnections {
  private readonly auth: LiveConnsAuth;
  private readonly clock: Clock;
  private readonly conns = new Set<LiveConn>();
  private readonly answers = new Map<string, { answer: AccountCheckResult; at: number }>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | undefined;
  private readonly intervalMs: number;
  /** Set by the owner (the log of the proxy). */
  log: Logger | undefined;

  constructor(auth: LiveConnsAuth, options: { clock?: Clock; intervalMs?: number; log?: Logger } = {}) {
    this.auth = auth;
    this.clock = options.clock ?? systemClock;
    this.intervalMs = options.intervalMs ?? LIVE_CHECK_INTERVAL_MS;
    this.log = options.log;
  }

  /** Registers a connection; call the returned function when it ends (twice is harmless). */
  add(conn: LiveConn): () => void {
    this.conns.add(conn);
    if (!this.timer) {
      this.timer = setInterval(() => { void this.sweep(); }, this.intervalMs);
      this.timer.unref();
    }
    return () => this.remove(conn);
  }

  /** How many are open (tests, metrics). */
  size(): number {
    return this.conns.size;
  }

  private remove(conn: LiveConn): void {
    this.conns.delete(conn);
    if (this.conns.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.answers.clear();
    }
  }

  /** Checks every connection once (sweeps do not overlap); returns how many it ended. */
  sweep(): Promise<number> {
    this.sweeping ??= this.sweepOnce().finally(() => { this.sweeping = undefined; });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<number> {
    const now = this.clock.now().getTime();
    for (const [k, v] of this.answers) if (now - v.at >= LIVE_ANSWER_MAX_AGE_MS || now < v.at) this.answers.delete(k);
    const byKey = new Map<string, { check: AccountCheck; conns: LiveConn[] }>();
    for (const c of this.conns) {
      const check = checkOf(c);
      const k = JSON.stringify(check);
      const entry = byKey.get(k);
      if (entry) entry.conns.push(c); else byKey.set(k, { check, conns: [c] });
    }
    let ended = 0;
    await Promise.all([...byKey].map(async ([k, { check, conns }]) => {
      let answer = this.answers.get(k)?.answer;
      if (!answer) {
        try {
          answer = await this.auth.checkAccount(check);
        } catch (err) {
          this.log?.warn({ err, user: check.user }, 'could not check a live connection with auth; it stays open');
          return;
        }
        this.answers.set(k, { answer, at: now });
      }
      if (answer.valid) return;
      const locked = Boolean(answer.locked);
      for (const c of conns) {
        if (!this.conns.has(c)) continue;
        this.remove(c);
        ended++;
        const message = `${c.ends ?? 'session terminated'}: ${answer.reason ?? 'access was revoked'}`;
        this.log?.info({ user: c.user, login: c.login, node: c.node, via: c.via, session: c.sessionId, reason: answer.reason }, 'ended a live connection');
        try { c.close(message, { locked }); } catch (err) { this.log?.warn({ err }, 'could not end a live connection cleanly'); }
        void this.auth.emitAudit?.({
          type: 'session.terminated', user: c.user, addr: c.clientAddr, success: true, node: c.node, login: c.login, via: c.via,
          ...(c.sessionId ? { sessionId: c.sessionId } : {}), reason: answer.reason, locked, message,
        }).catch((err: unknown) => this.log?.warn({ err }, 'could not audit the end of a live connection'));
      }
    }));
    return ended;
  }

  /** Stops the sweep (the proxy is closing). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** What auth is asked about one connection. */
function checkOf(c: LiveConn): AccountCheck {
  return {
    user: c.user,
    ...(c.webSessionId !== undefined ? { sessionId: c.webSessionId } : { account: c.account ?? '' }),
    ...(c.login ? { login: c.login } : c.principals ? { principals: [...c.principals].sort() } : {}),
    ...(c.node ? { node: c.node } : {}),
  };
}

/**
 * Connection limits of the proxy's listeners, OpenSSH's defences against a flood of
 * connections that never log in (sshd_config(5) names the SSH ones):
 *
 *   SSH listener (--ssh-addr), counted from the TCP accept until the login succeeds:
 *     login grace time      60s         an unauthenticated connection is closed after it (LoginGraceTime)
 *     max startups          10:30:100   from 10 unauthenticated connections on, a new one is refused
 *                                       with probability 30%, rising linearly to 100% at 100 (MaxStartups)
 *     per-source startups   5           unauthenticated connections from one address at once
 *                                       (PerSourceMaxStartups; half of start, so one address alone
 *                                       never pushes the listener into early drop)
 *     max auth tries        6           failed logins on one connection before it is closed (MaxAuthTries)
 *
 *   web port (--web-addr), counted from the TCP accept until the socket closes:
 *     connections per source  100       an address's connections beyond it get a 429 and are closed
 *     header timeout          20s       the TLS handshake and the first request head must arrive within it
 *
 * A refused connection is closed at once, so a flood costs the proxy no file descriptor
 * beyond the caps (the issue: 1,100 idle connections used up a limit of 1,024).
 */
import type { Socket, Server as NetServer } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { PosternError, ValidationError } from '../core/errors.ts';

/** MaxStartups start:rate:full. */
export interface MaxStartups {
  start: number;
  /** Percent refused at `start`. */
  rate: number;
  full: number;
}

/** The SSH listener's limits. */
export interface SshConnLimits {
  loginGraceMs: number;
  maxStartups: MaxStartups;
  perSourceMaxStartups: number;
  maxAuthTries: number;
}

/** The web port's limits. */
export interface WebConnLimits {
  maxConnectionsPerSource: number;
  headerTimeoutMs: number;
}

/** sshd's defaults, and a per-source cap of half of MaxStartups' start. */
export const DEFAULT_SSH_LIMITS: Readonly<SshConnLimits> = Object.freeze({
  loginGraceMs: 60_000,
  maxStartups: Object.freeze({ start: 10, rate: 30, full: 100 }),
  perSourceMaxStartups: 5,
  maxAuthTries: 6,
});

/** The web port's defaults: a browser opens at most 6 connections per host, the CLI one per command. */
export const DEFAULT_WEB_LIMITS: Readonly<WebConnLimits> = Object.freeze({
  maxConnectionsPerSource: 100,
  headerTimeoutMs: 20_000,
});

/** Parses `start:rate:full` or a plain `N` (= N:100:N, refuse from N on), as sshd_config does. */
export function parseMaxStartups(text: string, what = '--max-startups'): MaxStartups {
  const hint = 'Use start:rate:full, e.g. 10:30:100, or one number';
  const parts = text.trim().split(':');
  if (!parts.every((p) => /^\d{1,6}$/.test(p)) || (parts.length !== 1 && parts.length !== 3)) {
    throw new ValidationError(`invalid ${what} "${text}"`, { hint });
  }
  const [start, rate, full] = parts.length === 1 ? [Number(parts[0]), 100, Number(parts[0])] : parts.map(Number);
  if (start < 1 || full < start || rate < 1 || rate > 100) {
    throw new ValidationError(`invalid ${what} "${text}": start must be at least 1, full at least start, rate from 1 to 100`, { hint });
  }
  return { start, rate, full };
}

/** Formats MaxStartups the way it is typed. */
export function formatMaxStartups(m: MaxStartups): string {
  return `${m.start}:${m.rate}:${m.full}`;
}

/** The address connections are counted by: IPv4-mapped IPv6 as its IPv4 address. */
export function sourceKey(addr: string | undefined): string {
  if (!addr) return '?';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/** Why a connection was refused at accept. */
export type StartupRefusal = 'full' | 'early-drop' | 'per-source';

/** A decision on a new connection: admitted with a release, or refused with why. */
export type StartupVerdict = { ok: true; release: () => void } | { ok: false; why: StartupRefusal };

/**
 * Counts unauthenticated connections, overall and per source, and decides on a new one
 * as sshd's MaxStartups and PerSourceMaxStartups do. `release` (once) ends the count,
 * when the connection logs in or closes.
 */
export class StartupGate {
  private total = 0;
  private readonly perSource = new Map<string, number>();
  private readonly limits: Pick<SshConnLimits, 'maxStartups' | 'perSourceMaxStartups'>;
  private readonly random: () => number;

  constructor(limits: Pick<SshConnLimits, 'maxStartups' | 'perSourceMaxStartups'>, random: () => number = Math.random) {
    this.limits = limits;
    this.random = random;
  }

  /** The probability, 0 to 1, that a new connection is refused with `n` unauthenticated ones open. */
  dropProbability(n: number): number {
    const { start, rate, full } = this.limits.maxStartups;
    if (n < start) return 0;
    if (n >= full) return 1;
    return (rate + ((100 - rate) * (n - start)) / (full - start)) / 100;
  }

  /** Decides on a connection from `addr`. */
  admit(addr: string | undefined): StartupVerdict {
    const key = sourceKey(addr);
    const mine = this.perSource.get(key) ?? 0;
    if (mine >= this.limits.perSourceMaxStartups) return { ok: false, why: 'per-source' };
    const p = this.dropProbability(this.total);
    if (p >= 1) return { ok: false, why: 'full' };
    if (p > 0 && this.random() < p) return { ok: false, why: 'early-drop' };
    this.total++;
    this.perSource.set(key, mine + 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.perSource.get(key) ?? 1) - 1;
        if (left > 0) this.perSource.set(key, left);
        else this.perSource.delete(key);
      },
    };
  }

  /** Unauthenticated connections open now. */
  unauthenticated(): number {
    return this.total;
  }
}

/** The line an SSH client shows when its connection is refused at accept (OpenSSH prints lines before the banner). */
export function startupRefusalLine(why: StartupRefusal, limits: SshConnLimits): string {
  if (why === 'per-source') {
    return `Postern: too many unauthenticated connections from your address (at most ${limits.perSourceMaxStartups}); try again shortly\r\n`;
  }
  return `Postern: too many unauthenticated connections (MaxStartups ${formatMaxStartups(limits.maxStartups)}); try again shortly\r\n`;
}

/** The web port's refusal of a connection over the per-source cap. */
export class TooManyConnectionsError extends PosternError {
  constructor(addr: string, max: number) {
    super('ERR_POSTERN_TOO_MANY_CONNECTIONS', `too many connections from ${addr} (at most ${max} at once)`, {
      hint: 'Close idle connections and try again; an admin can raise --web-max-connections-per-source',
      status: 429,
    });
  }
}

/** What the web port's limiter offers the HTTP and tunnel handlers. */
export interface WebConnLimiter {
  /** The refusal for a connection over its source's cap, else undefined. */
  refusal(sock: Socket): TooManyConnectionsError | undefined;
  /** Marks a connection as having sent its request: the header timeout no longer applies. */
  started(sock: Socket): void;
  /** Connections open now from `addr` (tests). */
  count(addr: string): number;
}

const socketKey = (s: Socket): string => `${s.remoteAddress ?? '?'}|${s.remotePort ?? 0}`;

/**
 * Counts an HTTPS server's connections per source from the TCP accept. Beyond the cap a
 * connection still gets its TLS handshake, so that its first request can be answered with
 * a clear 429 (the caller asks {@link WebConnLimiter.refusal}); beyond twice the cap it is
 * closed at once. A connection that has not sent a request (or a tunnel line) within the
 * header timeout is closed: idle connections cannot pile up.
 */
export function limitWebConnections(server: TlsServer | NetServer, limits: WebConnLimits): WebConnLimiter {
  const counts = new Map<string, number>();
  const over = new Set<string>();
  const pending = new Map<string, NodeJS.Timeout>();
  server.prependListener('connection', (sock: Socket) => {
    const src = sourceKey(sock.remoteAddress);
    const key = socketKey(sock);
    const n = (counts.get(src) ?? 0) + 1;
    counts.set(src, n);
    const timer = setTimeout(() => sock.destroy(), limits.headerTimeoutMs);
    timer.unref();
    pending.set(key, timer);
    if (n > limits.maxConnectionsPerSource) over.add(key);
    sock.once('close', () => {
      clearTimeout(timer);
      pending.delete(key);
      over.delete(key);
      const left = (counts.get(src) ?? 1) - 1;
      if (left > 0) counts.set(src, left);
      else counts.delete(src);
    });
    if (n > 2 * limits.maxConnectionsPerSource) sock.destroy();
  });
  return {
    refusal(sock: Socket) {
      return over.has(socketKey(sock)) ? new TooManyConnectionsError(sourceKey(sock.remoteAddress), limits.maxConnectionsPerSource) : undefined;
    },
    started(sock: Socket) {
      const key = socketKey(sock);
      const timer = pending.get(key);
      if (timer) clearTimeout(timer);
      pending.delete(key);
    },
    count: (addr: string) => counts.get(sourceKey(addr)) ?? 0,
  };
}

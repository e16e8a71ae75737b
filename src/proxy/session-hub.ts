/**
 * The live sessions this proxy carries: web terminals and recording-mode SSH sessions.
 * One {@link LiveSession} per shell on a node: everything the node prints goes to the
 * recorder and to every participant; what the owner and peers type goes to the node;
 * observers' keystrokes are dropped. Participants join through the SSH listener
 * (`postern join`) or a websocket (the web UI); everyone sees who comes and goes.
 *
 *   const live = await hub.start({ kind: 'web', user, node, login, width, height, ... }, {
 *     toNode: (d) => channel.write(d), resizeNode: (c, r) => channel.setWindow(r, c, 0, 0),
 *   });
 *   channel.on('data', (d) => live.output(d));
 *   const owner = live.attach({ user, mode: 'owner', write, notice, close });
 *   owner.input(keys);  ...  await live.end(exitCode);
 *
 * The hub tells auth about each session (upsertActiveSession) when it starts, whenever
 * someone joins or leaves, and every 30 s while it runs, so `sessions ls` on any proxy
 * lists it; auth forgets a session 90 s after its last report. While it carries any session
 * the hub also says every 2 s that this proxy process (`instance`, random per start) is
 * alive: auth stops listing its sessions 10 s after the last word, so a proxy that dies
 * leaves no ghost past seconds.
 *
 * A session that another proxy carries (behind a load balancer a joiner may land anywhere)
 * is joined through {@link SessionHub.open}: here it is the LiveSession itself, elsewhere a
 * relay to the carrying proxy over mutual TLS (peer-relay.ts). Both are a
 * {@link JoinableSession}, so `postern join` and the web UI use one path.
 */
import { randomBytes } from 'node:crypto';
import type { ActiveSession, JoinMode } from '../api/types.ts';
import type { HubAuth } from '../api/proxy-auth.ts';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import { NotFoundError, PosternError } from '../core/errors.ts';
import { Recorder } from './recorder.ts';
import type { RecorderOptions, RecorderSummary } from './recorder.ts';

/** Who the hub is and where users reach it. */
export interface SessionHubOptions {
  auth: HubAuth;
  /** This proxy's heartbeat name. */
  proxyName: string;
  proxyWebAddr?: string;
  proxySshAddr?: string;
  /** Where other proxies relay joins to this one (peer-relay.ts); unset: it takes none. */
  proxyPeerAddr?: string;
  /** Opens a session another proxy carries (peer-relay.ts); unset: only this proxy's sessions can be joined. */
  remote?: RemoteJoin;
  /** How often this process says it is alive while it carries sessions (2 s). */
  aliveIntervalMs?: number;
  log: Logger;
  clock?: Clock;
  /** How often a running session is reported to auth (30 s). */
  reportIntervalMs?: number;
  /** How much recent output a joiner is shown first, so they see the screen (64 KiB). */
  replayBytes?: number;
  recorder?: RecorderOptions;
}

/** What a new session is. */
export interface LiveSessionStart {
  kind: ActiveSession['kind'];
  user: string;
  node: string;
  login: string;
  width: number;
  height: number;
  term?: string;
  clientAddr?: string;
  /** An exec session's command line; such a session is recorded but has no terminal to join. */
  command?: string;
}

/** How the session reaches the node's shell. */
export interface NodeSide {
  /** Keystrokes of the owner and peers. */
  toNode(data: Buffer): void;
  /** The owner's window changed. */
  resizeNode?(cols: number, rows: number): void;
}

/** A participant's terminal, as the hub drives it. */
export interface ParticipantIo {
  user: string;
  mode: 'owner' | JoinMode;
  /** The node's output. */
  write(data: Buffer): void;
  /** A line about the session (who joined or left), shown but never recorded or sent to the node. */
  notice(text: string): void;
  /** The session ended or the participant was removed; `reason` says which. */
  close(reason: string): void;
}

/** A participant's handle: what it typed and when its window changed. */
export interface Participant {
  readonly id: string;
  readonly user: string;
  readonly mode: 'owner' | JoinMode;
  /** Sent to the node for the owner and peers; dropped (and false) for observers. */
  input(data: Buffer): boolean;
  /** The owner's terminal size is the session's; others' are ignored. */
  resize(cols: number, rows: number): void;
  /** Leaves the session (the owner leaving does not end it: the node's shell does). */
  leave(): void;
}

/** Who joins, as auth allowed it. */
export interface Joiner {
  user: string;
  mode: JoinMode;
  clientAddr: string;
}

/**
 * A live session as a joiner sees it: a {@link LiveSession} of this proxy, or one carried by
 * another proxy and relayed (peer-relay.ts). `attach` takes the joiner's terminal.
 */
export interface JoinableSession {
  readonly id: string;
  readonly recordingId: string;
  readonly start: Pick<LiveSessionStart, 'user' | 'node' | 'login'>;
  readonly terminalSize: { cols: number; rows: number };
  readonly exitCode: number | undefined;
  /** Who is present now (the owner first). */
  describe(): Pick<ActiveSession, 'participants'>;
  attach(io: ParticipantIo): Participant;
}

/** Opens a session carried by another proxy, for a joiner auth allowed. */
export type RemoteJoin = (session: ActiveSession, joiner: Joiner) => Promise<JoinableSession>;

interface Member {
  id: string;
  io: ParticipantIo;
  joinedAt: string;
}

/** One shell on a node that the proxy carries and records. */
export class LiveSession implements JoinableSession {
  readonly id: string;
  readonly start: LiveSessionStart;
  readonly startedAt: string;
  readonly recorder: Recorder;
  /** The shell's exit status once known (for participants' end message). */
  exitCode: number | undefined;
  private readonly hub: SessionHub;
  private readonly node: NodeSide;
  private readonly members = new Map<string, Member>();
  private recent: Buffer[] = [];
  private recentBytes = 0;
  private size: { cols: number; rows: number };
  private ended = false;
  private timer: NodeJS.Timeout | undefined;
  /** Reports to auth go out one at a time, in order, so an end is never overtaken by an older upsert. */
  private reports: Promise<void> = Promise.resolve();

  /** @internal: made by {@link SessionHub.start}. */
  constructor(hub: SessionHub, id: string, start: LiveSessionStart, recorder: Recorder, node: NodeSide, startedAt: string) {
    this.hub = hub;
    this.id = id;
    this.start = start;
    this.recorder = recorder;
    this.node = node;
    this.startedAt = startedAt;
    this.size = { cols: start.width, rows: start.height };
  }

  /** The recording's id. */
  get recordingId(): string {
    return this.recorder.id;
  }

  /** Whether the session has ended. */
  get isEnded(): boolean {
    return this.ended;
  }

  /** The terminal size now (the owner's). */
  get terminalSize(): { cols: number; rows: number } {
    return { ...this.size };
  }

  /** What the node printed: recorded, and shown to every participant. */
  output(data: Buffer): void {
    if (this.ended || data.length === 0) return;
    this.recorder.output(data);
    this.remember(data);
    for (const m of this.members.values()) {
      try { m.io.write(data); } catch (err) { this.hub.log.debug({ err, session: this.id }, 'a participant could not take output'); }
    }
  }

  /** Adds a participant; joiners first see the recent screen. */
  attach(io: ParticipantIo): Participant {
    if (this.ended) throw new NotFoundError(`session ${this.id} has ended`);
    const id = randomBytes(6).toString('hex');
    const member: Member = { id, io, joinedAt: this.hub.now().toISOString() };
    if (io.mode !== 'owner') for (const chunk of this.recent) io.write(chunk);
    this.members.set(id, member);
    if (io.mode !== 'owner') {
      // Everyone already there hears of it, with the new list of who is present.
      this.announce(`${io.user} joined as ${io.mode}`, id);
      this.recorder.marker(`${io.user} joined as ${io.mode}`);
    }
    if (io.mode !== 'owner') io.notice(`joined session ${this.id} of ${this.start.user} on ${this.start.node} as ${io.mode}; present: ${this.presentUsers().join(', ')}`);
    this.report();
    const session = this;
    return {
      id, user: io.user, mode: io.mode,
      input(data: Buffer): boolean {
        if (session.ended || !session.members.has(id) || io.mode === 'observer') return false;
        session.recorder.input(data);
        session.node.toNode(data);
        return true;
      },
      resize(cols: number, rows: number): void {
        if (session.ended || io.mode !== 'owner' || !(cols > 0 && rows > 0)) return;
        if (cols === session.size.cols && rows === session.size.rows) return;
        session.size = { cols, rows };
        session.recorder.resize(cols, rows);
        session.node.resizeNode?.(cols, rows);
      },
      leave(): void {
        if (!session.members.delete(id)) return;
        if (session.ended) return;
        session.announce(`${io.user} left`);
        if (io.mode !== 'owner') session.recorder.marker(`${io.user} left`);
        session.report();
      },
    };
  }

  /** The session is over (the node's shell exited or the connection dropped). */
  async end(exitCode?: number, reason?: string): Promise<RecorderSummary> {
    if (this.ended) return this.recorder.finish(exitCode);
    this.ended = true;
    if (exitCode !== undefined) this.exitCode = exitCode;
    if (this.timer) clearInterval(this.timer);
    const why = reason ?? (exitCode === undefined ? 'the session ended' : `the session ended (exit status ${exitCode})`);
    for (const m of this.members.values()) {
      try { m.io.close(why); } catch { /* already gone */ }
    }
    this.members.clear();
    this.hub.forget(this);
    this.reports = this.reports.then(() => this.hub.auth.endActiveSession({ id: this.id }))
      .catch((err: unknown) => this.hub.log.warn({ err, session: this.id }, 'could not tell auth the session ended'));
    return this.recorder.finish(exitCode);
  }

  /** The session as auth lists it. */
  describe(): ActiveSession {
    const s = this.start;
    return {
      id: this.id, kind: s.kind, user: s.user, node: s.node, login: s.login, startedAt: this.startedAt,
      proxy: this.hub.opts.proxyName,
      ...(this.hub.opts.proxyWebAddr ? { proxyWebAddr: this.hub.opts.proxyWebAddr } : {}),
      ...(this.hub.opts.proxySshAddr ? { proxySshAddr: this.hub.opts.proxySshAddr } : {}),
      ...(this.hub.opts.proxyPeerAddr ? { proxyPeerAddr: this.hub.opts.proxyPeerAddr } : {}),
      proxyInstance: this.hub.instance,
      recordingId: this.recorder.id,
      participants: [...this.members.values()].map((m) => ({ user: m.io.user, mode: m.io.mode, joinedAt: m.joinedAt })),
      width: this.size.cols, height: this.size.rows,
    };
  }

  /** @internal: starts the periodic report. */
  beginReports(intervalMs: number): void {
    this.report();
    this.timer = setInterval(() => this.report(), intervalMs);
    this.timer.unref();
  }

  private presentUsers(): string[] {
    return [...this.members.values()].map((m) => `${m.io.user} (${m.io.mode})`);
  }

  private announce(text: string, except?: string): void {
    for (const m of this.members.values()) {
      if (m.id === except) continue;
      try { m.io.notice(text); } catch { /* gone */ }
    }
  }

  private remember(data: Buffer): void {
    const max = this.hub.replayBytes;
    this.recent.push(data);
    this.recentBytes += data.length;
    while (this.recentBytes > max && this.recent.length > 1) this.recentBytes -= this.recent.shift()!.length;
  }

  private report(): void {
    if (this.ended) return;
    this.reports = this.reports.then(async () => {
      if (this.ended) return;
      await this.hub.auth.upsertActiveSession(this.describe());
    }).catch((err: unknown) => this.hub.log.warn({ err, session: this.id }, 'could not report the live session to auth'));
  }
}

/** Every live session of this proxy. */
export class SessionHub {
  readonly auth: HubAuth;
  readonly opts: SessionHubOptions;
  readonly log: Logger;
  readonly replayBytes: number;
  /** This proxy process, as auth tells its sessions' liveness by it. */
  readonly instance = randomBytes(12).toString('base64url');
  private readonly clock: Clock;
  private readonly sessions = new Map<string, LiveSession>();
  private alive: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(opts: SessionHubOptions) {
    this.opts = opts;
    this.auth = opts.auth;
    this.log = opts.log;
    this.clock = opts.clock ?? systemClock;
    this.replayBytes = opts.replayBytes ?? 64 * 1024;
  }

  /** The hub's time. */
  now(): Date {
    return this.clock.now();
  }

  /** Starts recording a new session and reports it to auth; attach the owner next. */
  async start(start: LiveSessionStart, node: NodeSide): Promise<LiveSession> {
    if (this.closing) throw new PosternError('ERR_POSTERN_SHUTTING_DOWN', 'the proxy is shutting down', { status: 503, hint: 'Try again in a moment, or through another proxy' });
    // Never a leading '-': `postern join -Abc…` would read the id as an option.
    let id = randomBytes(12).toString('base64url');
    while (id.startsWith('-')) id = randomBytes(12).toString('base64url');
    const startedAt = this.now().toISOString();
    const recorder = await Recorder.start(this.auth, {
      user: start.user, node: start.node, login: start.login, kind: start.command === undefined ? 'shell' : 'exec',
      width: start.width, height: start.height, startedAt, sessionId: id,
      ...(start.command !== undefined ? { command: start.command } : {}),
      ...(start.term ? { term: start.term } : {}),
      ...(start.clientAddr ? { clientAddr: start.clientAddr } : {}),
    }, { log: this.log, clock: this.clock, ...this.opts.recorder });
    const live = new LiveSession(this, id, start, recorder, node, startedAt);
    this.sessions.set(id, live);
    // The proxy began shutting down while the recording started: this one ends too.
    if (this.closing) {
      await live.end(undefined, 'the proxy is shutting down');
      throw new PosternError('ERR_POSTERN_SHUTTING_DOWN', 'the proxy is shutting down', { status: 503, hint: 'Try again in a moment, or through another proxy' });
    }
    live.beginReports(this.opts.reportIntervalMs ?? 30_000);
    this.alive ??= setInterval(() => {
      this.auth.heartbeatSessions({ instance: this.instance }).catch((err: unknown) => this.log.warn({ err }, 'could not tell auth this proxy is alive'));
    }, this.opts.aliveIntervalMs ?? 2_000).unref();
    return live;
  }

  /**
   * The session auth allowed `joiner` into: this proxy's own, or a relay to the proxy that
   * carries it. A NotFoundError when neither is possible.
   */
  async open(s: ActiveSession, joiner: Joiner): Promise<JoinableSession> {
    const here = this.sessions.get(s.id);
    if (here && !here.isEnded) return here;
    if (s.proxyInstance === this.instance || !this.opts.remote) return this.get(s.id);
    if (!s.proxyPeerAddr) {
      throw new NotFoundError(`session ${s.id} is carried by proxy ${s.proxy}, which takes no joins from other proxies`, {
        hint: s.proxyWebAddr ? `Log in through that proxy (postern login --proxy ${s.proxyWebAddr}) and join there` : 'Join through the proxy that carries it',
      });
    }
    return this.opts.remote(s, joiner);
  }

  /** A session this proxy carries, or a NotFoundError that says so. */
  get(id: string): LiveSession {
    const s = this.sessions.get(id);
    if (!s || s.isEnded) throw new NotFoundError(`no live session ${id} on this proxy`, { hint: 'List the live sessions with:  postern sessions ls' });
    return s;
  }

  /** The sessions running now. */
  list(): LiveSession[] {
    return [...this.sessions.values()];
  }

  /** Ends every session (the proxy is shutting down). */
  async close(reason = 'the proxy is shutting down'): Promise<void> {
    this.closing = true;
    await Promise.all(this.list().map((s) => s.end(undefined, reason)));
  }

  /** @internal */
  forget(s: LiveSession): void {
    this.sessions.delete(s.id);
    if (this.sessions.size === 0 && this.alive) { clearInterval(this.alive); this.alive = undefined; }
  }
}

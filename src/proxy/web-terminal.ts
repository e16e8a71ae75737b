/**
 * The web terminal: xterm.js in the browser speaks to the proxy over a secure websocket,
 * and the proxy opens SSH to the node itself, signing through the web session's agent at
 * auth (auth-agent.ts). Every terminal is a live session of the SessionHub: recorded,
 * listed, joinable (`/webapi/sessions/:id/join` over a websocket too, or `postern join`).
 *
 * Frames: binary both ways are terminal bytes (keys up, screen down); text frames are JSON
 * control messages — up: {"type":"resize","cols","rows"}; down: {"type":"session",…} first,
 * {"type":"notice","text","participants"}, {"type":"exit","code","reason"} then close 1000,
 * {"type":"error","code","message"} then close 4401/4403/4404/4502/4000. A joiner whom a lock,
 * a reset or a removal comes to cover is removed with an error frame (ERR_POSTERN_LOCKED then
 * 4403, or ERR_POSTERN_ACCOUNT_REVOKED then 4401); the session goes on for the others.
 *
 * Before any upgrade: the Origin must be this server's own (403) and the session cookie
 * valid (401). A websocket that drops ends the owner's shell; a node that drops ends the
 * session with its reason.
 *
 * Whatever fails, what was opened toward the node is closed ({@link NodeHandles}): a browser
 * that goes away while the node is dialled, authenticated or the shell opened; a refused
 * dial, host certificate or login; a recording that cannot start; a session that ends or
 * a proxy that shuts down (the owner's screen closing closes the node side too).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type {} from '@fastify/websocket';
import type { Socket } from 'node:net';
import type { Client, ClientChannel } from 'ssh2';
import type { JoinMode } from '../api/types.ts';
import type { WebTerminalAuth } from '../api/proxy-auth.ts';
import type { Logger } from '../core/logger.ts';
import type { Clock } from '../core/clock.ts';
import { ValidationError } from '../core/errors.ts';
import { AccountRevokedError, loginNotAllowedError } from '../api/refusals.ts';
import { LockedError } from '../api/locks.ts';
import { errorToBody } from '../api/errors.ts';
import { connectNodeWithAgent } from './node-client.ts';
import { dialNode } from './node-dialer.ts';
import { AuthAgent } from './auth-agent.ts';
import type { JoinableSession, LiveSession, ParticipantIo, SessionHub } from './session-hub.ts';
import type { CookieCaller, WebAuth } from './web-auth.ts';
import { sameOrigin } from './web-auth.ts';
import type { ClusterInfoSource } from './cluster-info.ts';

/** What the terminal routes need. */
export interface WebTerminalOptions {
  auth: WebTerminalAuth;
  hub: SessionHub;
  webAuth: WebAuth;
  log: Logger;
  clock: Clock;
  /** The proxy's shared cluster facts (host CA keys, name). */
  cluster: ClusterInfoSource;
}

/** Past this many bytes waiting for the browser, the node's output is paused. */
const HIGH_WATER = 1 << 20;

const callers = new WeakMap<FastifyRequest, CookieCaller>();

/** How long a node connection that was asked to end may take before its socket is destroyed. */
export const NODE_CLOSE_GRACE_MS = 5_000;

/**
 * What one terminal opened toward the node: the socket, the SSH connection, the shell
 * channel. `close()` ends them all (politely, then by force after a grace time), and
 * whatever is handed over after it is closed at once, so a step that finishes after the
 * browser went away leaves nothing open.
 */
class NodeHandles {
  closed = false;
  private sock: Socket | undefined;
  private client: Client | undefined;
  private stream: ClientChannel | undefined;

  adoptSock(sock: Socket): Socket { this.sock = sock; if (this.closed) sock.destroy(); return sock; }
  adoptClient(client: Client): Client { this.client = client; if (this.closed) this.close(); return client; }
  adoptStream(stream: ClientChannel): ClientChannel { this.stream = stream; if (this.closed) this.close(); return stream; }

  close(): void {
    this.closed = true;
    try { this.stream?.close(); } catch { /* already closed */ }
    if (!this.client) { this.sock?.destroy(); return; }
    try { this.client.end(); } catch { /* already ended */ }
    const sock = this.sock;
    const client = this.client;
    if (sock && !sock.destroyed) {
      setTimeout(() => { client.destroy(); sock.destroy(); }, NODE_CLOSE_GRACE_MS).unref();
    }
  }
}

/** The browser went away while the terminal was being set up: nothing to tell anyone. */
class BrowserGoneError extends Error {}

/** Origin and cookie, before the upgrade. */
async function guard(opts: WebTerminalOptions, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (!sameOrigin(req)) {
    await reply.code(403).send({ error: { code: 'ERR_POSTERN_ORIGIN', message: `websocket from another origin (${String(req.headers.origin ?? 'none')}) refused` } });
    return;
  }
  callers.set(req, await opts.webAuth.session(req));
}

function closeCode(err: unknown): number {
  const status = errorToBody(err).status;
  return status === 401 ? 4401 : status === 403 ? 4403 : status === 404 ? 4404 : status === 502 ? 4502 : 4000;
}

function sendJson(ws: WebSocket, msg: unknown): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
}

function fail(ws: WebSocket, err: unknown): void {
  const { body } = errorToBody(err);
  sendJson(ws, { type: 'error', code: body.error.code, message: body.error.message, ...(body.error.hint ? { hint: body.error.hint } : {}) });
  ws.close(closeCode(err), body.error.code.slice(0, 100));
}

/** A participant whose screen is a websocket; `pause` is told when the browser falls behind. */
function wsParticipant(ws: WebSocket, user: string, mode: ParticipantIo['mode'], live: JoinableSession, flow?: { pause(): void; resume(): void }, onClose?: () => void): ParticipantIo {
  let pending = 0;
  let paused = false;
  return {
    user, mode,
    write: (d) => {
      if (ws.readyState !== ws.OPEN) return;
      pending += d.length;
      if (flow && !paused && pending > HIGH_WATER) { paused = true; flow.pause(); }
      ws.send(d, { binary: true }, () => {
        pending -= d.length;
        if (flow && paused && pending < HIGH_WATER / 4) { paused = false; flow.resume(); }
      });
    },
    notice: (text) => sendJson(ws, { type: 'notice', text, participants: live.describe().participants }),
    close: (reason) => {
      sendJson(ws, { type: 'exit', code: live.exitCode ?? null, reason });
      if (ws.readyState === ws.OPEN) ws.close(1000, 'session ended');
      onClose?.();
    },
  };
}

/** Registers the terminal and join websockets (inside a plugin after @fastify/websocket). */
export function registerWebTerminal(app: FastifyInstance, opts: WebTerminalOptions): void {
  app.get('/webapi/terminal', { websocket: true, preValidation: (req, reply) => guard(opts, req, reply) }, (socket, req) => {
    void openTerminal(opts, socket as WebSocket, req).catch((err) => { if (!(err instanceof BrowserGoneError)) fail(socket as WebSocket, err); });
  });
  app.get<{ Params: { id: string } }>('/webapi/sessions/:id/join', { websocket: true, preValidation: (req, reply) => guard(opts, req, reply) }, (socket, req) => {
    void joinTerminal(opts, socket as WebSocket, req as FastifyRequest<{ Params: { id: string } }>).catch((err) => fail(socket as WebSocket, err));
  });
}

function query(req: FastifyRequest): Record<string, string> {
  return (req.query ?? {}) as Record<string, string>;
}

function size(v: string | undefined, dflt: number, what: string): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 2 || n > 1000) throw new ValidationError(`${what} must be a whole number from 2 to 1000`);
  return n;
}

async function openTerminal(opts: WebTerminalOptions, ws: WebSocket, req: FastifyRequest): Promise<void> {
  const caller = callers.get(req)!;
  const q = query(req);
  const target = q.node ?? '';
  const login = q.login ?? '';
  if (!/^[A-Za-z0-9._=,:-]{1,253}$/.test(target)) throw new ValidationError('node is required: a node name or label selector');
  if (!caller.session.logins.includes(login)) throw loginNotAllowedError(login, caller.session.logins);
  let cols = size(q.cols, 80, 'cols');
  let rows = size(q.rows, 24, 'rows');
  const log = opts.log.child({ user: caller.user, target, login, via: 'web' });
  // Keys typed and sizes sent while the connection to the node is being made are kept.
  const early: Buffer[] = [];
  // Set once the session runs, by the code after the connection to the node.
  const to: { key?: (d: Buffer) => void; resize?: (c: number, r: number) => void } = {};
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) { if (to.key) to.key(data); else early.push(Buffer.from(data)); return; }
    let msg: { type?: string; cols?: number; rows?: number };
    try { msg = JSON.parse(data.toString('utf8')) as typeof msg; } catch { return; }
    if (msg.type === 'resize' && Number.isInteger(msg.cols) && Number.isInteger(msg.rows) && msg.cols! > 1 && msg.rows! > 1 && msg.cols! <= 1000 && msg.rows! <= 1000) {
      if (to.resize) to.resize(msg.cols!, msg.rows!); else { cols = msg.cols!; rows = msg.rows!; }
    }
  });
  // The browser going away at any step closes whatever was opened toward the node.
  const node = new NodeHandles();
  ws.on('close', () => node.close());
  ws.on('error', (err: Error) => log.info({ err }, 'websocket error'));
  const step = <T>(v: T): T => { if (node.closed) throw new BrowserGoneError(); return v; };

  const clientAddr = req.ip;
  const who = { user: caller.user, principals: caller.session.logins, login, clientAddr };
  let live: LiveSession;
  let stream: ClientChannel;
  let client: Client;
  let nodeName: string;
  try {
    const dialled = step(await dialNode(opts.auth, who, target, 22, 'web', log));
    node.adoptSock(dialled.sock);
    step(undefined);
    const cluster = step(await opts.cluster.get());
    nodeName = dialled.decision.node?.name ?? target;
    client = node.adoptClient(await connectNodeWithAgent({
      sock: dialled.sock, login, agent: new AuthAgent(opts.auth, caller.sessionId),
      hostCaKeys: cluster.hostCaKeys, names: [target, `${target}.${cluster.name}`, nodeName, `${nodeName}.${cluster.name}`],
      label: target, now: () => opts.clock.now(),
    }));
    client.on('error', (err: Error) => log.info({ err }, 'node connection error'));
    step(undefined);
    stream = node.adoptStream(await new Promise<ClientChannel>((resolve, reject) => {
      client.shell({ term: 'xterm-256color', cols, rows, width: 0, height: 0 }, { env: { LANG: 'C.UTF-8' } } as never, (err, s) => (err ? reject(err) : resolve(s)));
    }));
    // A write after the node closed its side must not take the proxy down with it.
    stream.on('error', (err: Error) => log.info({ err }, 'node channel error'));
    step(undefined);
    const channel = stream;
    live = await opts.hub.start({ kind: 'web', user: caller.user, node: nodeName, login, width: cols, height: rows, term: 'xterm-256color', clientAddr }, {
      toNode: (d) => channel.write(d),
      resizeNode: (c, r) => channel.setWindow(r, c, 0, 0),
    });
  } catch (err) {
    node.close();
    if (!(err instanceof BrowserGoneError)) log.info({ err }, 'web terminal failed');
    throw err;
  }
  if (node.closed) {
    await live.end(undefined, 'the browser went away');
    throw new BrowserGoneError();
  }
  const owner = live.attach(wsParticipant(ws, caller.user, 'owner', live, { pause: () => stream.pause(), resume: () => stream.resume() }, () => node.close()));
  void opts.auth.emitAudit({ type: 'session.start', user: caller.user, addr: clientAddr, success: true, node: nodeName, login, sessionId: live.id, recording: live.recordingId, via: 'web' }).catch(() => {});
  sendJson(ws, { type: 'session', id: live.id, recordingId: live.recordingId, node: nodeName, login, mode: 'owner', participants: live.describe().participants });
  // A lock, a reset or a removal that comes to cover it ends it, saying why (live-conns.ts).
  const unregister = opts.cluster.live.add({
    user: caller.user, webSessionId: caller.sessionId, login, node: nodeName, via: 'web', clientAddr,
    close: (message) => { void live.end(undefined, message); stream.close(); client.end(); },
  });
  client.once('close', unregister);
  to.key = (d) => owner.input(d);
  to.resize = (c, r) => owner.resize(c, r);
  for (const k of early.splice(0)) owner.input(k);
  stream.on('data', (d: Buffer) => live.output(d));
  stream.stderr.on('data', (d: Buffer) => live.output(d));
  let code: number | undefined;
  stream.on('exit', (c: number | null) => { if (typeof c === 'number') code = c; });
  stream.on('close', () => {
    live.exitCode = code;
    node.close();
    void live.end(code).then((summary) => opts.auth.emitAudit({ type: 'session.end', user: caller.user, addr: clientAddr, success: true, node: nodeName, login, sessionId: live.id, recording: summary.id, exitCode: code ?? null, via: 'web' })).catch(() => {});
  });
  client.on('close', () => { if (!live.isEnded) void live.end(code, 'the connection to the node was lost'); });
  // The browser went away: the owner's shell ends with it (node.close above closes the channel).
  ws.on('close', () => { if (!live.isEnded) void live.end(code, 'the browser went away'); });
}

async function joinTerminal(opts: WebTerminalOptions, ws: WebSocket, req: FastifyRequest<{ Params: { id: string } }>): Promise<void> {
  const caller = callers.get(req)!;
  const mode = (query(req).mode ?? 'observer') as JoinMode;
  if (mode !== 'observer' && mode !== 'peer') throw new ValidationError('mode must be observer or peer');
  const s = await opts.auth.authorizeJoin({ user: caller.user, sessionId: req.params.id, mode, clientAddr: req.ip });
  // Here, or relayed to the proxy that carries it (peer-relay.ts).
  const live = await opts.hub.open(s, { user: caller.user, mode, clientAddr: req.ip });
  ws.on('error', (err: Error) => opts.log.info({ err, session: live.id }, 'websocket error'));
  let unregister = (): void => {};
  let ended = false;
  const me = live.attach(wsParticipant(ws, caller.user, mode, live, undefined, () => { ended = true; unregister(); }));
  // Gone while auth was asked: no member is left behind in the session.
  if (ws.readyState !== ws.OPEN) { me.leave(); return; }
  sendJson(ws, { type: 'session', id: live.id, recordingId: live.recordingId, node: live.start.node, login: live.start.login, owner: live.start.user, mode, participants: live.describe().participants, cols: live.terminalSize.cols, rows: live.terminalSize.rows });
  // A lock, a reset or a removal that comes to cover the joiner removes them, saying why
  // (live-conns.ts); everyone else sees them leave and the session goes on.
  if (!ended) {
    unregister = opts.cluster.live.add({
      user: caller.user, webSessionId: caller.sessionId, login: live.start.login, node: live.start.node, via: 'web-join', clientAddr: req.ip,
      sessionId: live.id, ends: `removed from session ${live.id}`,
      close: (message, { locked }) => {
        ended = true;
        me.leave();
        fail(ws, locked ? new LockedError(message) : new AccountRevokedError(message));
      },
    });
  }
  ws.on('message', (data: Buffer, isBinary: boolean) => { if (isBinary) me.input(data); });
  ws.on('close', () => { unregister(); me.leave(); });
  // The browser left while a relay to another proxy was being opened.
  if (ws.readyState !== ws.OPEN) { unregister(); me.leave(); }
}

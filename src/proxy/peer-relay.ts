/**
 * Joining a live session that another proxy carries (docs/ha.md, "Live sessions across
 * proxies"). Behind a load balancer, the joiner's connection (`postern join`, the web UI's
 * watch/join) lands on proxy B while the session's shell runs through proxy A. Auth
 * decides on B exactly as for a local join (authorizeJoin, audited); the session's record
 * names A's process and its peer address; B then opens a mutual-TLS connection to A and
 * relays the joiner's terminal through it:
 *
 *   joiner ──SSH/WSS──▶ proxy B ──TLS 1.3, both sides a cluster proxy──▶ proxy A ──▶ node
 *
 * Trust: each proxy has a peer identity from the cluster's TLS CA (role `proxy` in the
 * certificate's O, its proxy name in CN, from signTlsCert; key in <data-dir>/proxy/peer.key).
 * A accepts only clients whose certificate chains to the cluster CA with role `proxy`: a
 * proxy already holds auth's decision (as every proxy is trusted to name the user it asks
 * auth about); A still enforces the mode (an observer's keys never reach the node). B checks
 * that the server chains to the cluster CA, has role `proxy` and is the proxy auth recorded
 * as carrying the session (its CN), so a wrong or stale address reaches nobody else.
 *
 * Wire, after the handshake: frames of [type: 1 byte][length: 4 bytes, big-endian][payload].
 *   B → A  'J' {"session","user","mode","clientAddr"} first, then 'I' keystrokes; closing leaves.
 *   A → B  'S' {"id","recordingId","node","login","owner","cols","rows","participants"} or
 *          'E' {"status","error":{code,message,hint}} and the end; then 'D' output bytes,
 *          'N' {"text","participants"}, and 'X' {"reason","exitCode"} at the end.
 */
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { X509Certificate, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { networkInterfaces } from 'node:os';
import type { ActiveSession, JoinMode } from '../api/types.ts';
import { DEFAULT_PEER_PORT } from '../api/types.ts';
import type { PeerRelayAuth } from '../api/proxy-auth.ts';
import { errorFromBody, errorToBody } from '../api/errors.ts';
import { ConnectionError, NotFoundError, ValidationError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { writeFileAtomic } from '../core/fs.ts';
import { loadOrCreateTlsKey } from '../core/tls-keys.ts';
import { listenError } from '../core/listen-error.ts';
import { formatHostPort, parseHostPort } from '../core/text.ts';
import type { JoinableSession, Joiner, Participant, ParticipantIo, RemoteJoin, SessionHub } from './session-hub.ts';


/** How long a relay may take to connect and get A's answer. */
const OPEN_TIMEOUT_MS = 10_000;
/** Past this many bytes waiting for B, A drops the relayed joiner (it fell behind). */
const HIGH_WATER = 8 << 20;
/** The largest frame either side accepts. */
const MAX_FRAME = 4 << 20;

const T = { join: 0x4a, session: 0x53, error: 0x45, data: 0x44, notice: 0x4e, exit: 0x58, input: 0x49 } as const;

/** A proxy's peer identity: its certificate chain and key, and the cluster's TLS CA. */
export interface PeerTls {
  certPem: string;
  keyPem: string;
  caPem: string;
}

const DAY = 86_400_000;

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * The proxy's peer identity, in `dir` (peer.key 0600, peer.crt: leaf and CA): made on first
 * start, renewed 30 days before it ends. Its certificate names the proxy (CN) with role proxy.
 */
export async function loadPeerTls(auth: PeerRelayAuth, dir: string, hosts: string[]): Promise<PeerTls> {
  const { keyPem, publicKeyPem } = loadOrCreateTlsKey(join(dir, 'peer.key'));
  const certPath = join(dir, 'peer.crt');
  if (existsSync(certPath)) {
    const blocks = pemBlocks(readFileSync(certPath, 'utf8'));
    if (blocks.length >= 2) {
      const leaf = new X509Certificate(blocks[0]);
      if (new Date(leaf.validTo).getTime() - Date.now() > 30 * DAY && leaf.publicKey.export({ type: 'spki', format: 'pem' }) === publicKeyPem) {
        return { certPem: blocks.join('\n') + '\n', keyPem, caPem: blocks[blocks.length - 1] + '\n' };
      }
    }
  }
  const { certPem, caPem } = await auth.signTlsCert({ publicKeyPem, hosts });
  const chain = `${certPem.trim()}\n${caPem.trim()}\n`;
  writeFileAtomic(certPath, chain, 0o644);
  return { certPem: chain, keyPem, caPem };
}

/** The address other proxies dial: the one given, else the listen host, else this host's first non-loopback address. */
export function peerPublicAddr(listen: { host: string; port: number }, port: number, given?: { host: string; port?: number }): string {
  if (given) return formatHostPort(given.host, given.port ?? port);
  if (!['0.0.0.0', '::', ''].includes(listen.host)) return formatHostPort(listen.host, port);
  const addrs = Object.values(networkInterfaces()).flat().filter((a) => a && !a.internal);
  const pick = addrs.find((a) => a!.family === 'IPv4') ?? addrs[0];
  return formatHostPort(pick?.address ?? '127.0.0.1', port);
}

/** The role (O) and name (CN) of a certificate from the cluster CA. */
function subjectOf(raw: Buffer | undefined): { role?: string; name?: string } {
  if (!raw) return {};
  const fields = Object.fromEntries(new X509Certificate(raw).subject.split('\n').map((l) => l.split('=') as [string, string]));
  return { role: fields.O, name: fields.CN };
}

function frame(type: number, payload: Buffer | string | object): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Cuts a byte stream into frames; throws on a frame too large. */
class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Array<{ type: number; body: Buffer }> {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Array<{ type: number; body: Buffer }> = [];
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (len > MAX_FRAME) throw new ValidationError(`a peer frame of ${len} bytes is too large`);
      if (this.buf.length < 5 + len) break;
      out.push({ type: this.buf[0], body: this.buf.subarray(5, 5 + len) });
      this.buf = this.buf.subarray(5 + len);
    }
    return out;
  }
}

function json<T>(body: Buffer): T {
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch {
    throw new ValidationError('a peer frame is not valid JSON');
  }
}

/** What A says about the session once the joiner is in. */
interface SessionInfo {
  id: string;
  recordingId: string;
  node: string;
  login: string;
  owner: string;
  cols: number;
  rows: number;
  participants: ActiveSession['participants'];
}

/** The peer listener's options. */
export interface PeerServerOptions {
  hub: SessionHub;
  tls: PeerTls;
  addr: { host: string; port: number };
  log: Logger;
}

/** A running peer listener. */
export interface RunningPeerServer {
  port: number;
  close(): Promise<void>;
}

/** Starts A's side: relayed joins of this proxy's own sessions, from cluster proxies only. */
export async function startPeerServer(opts: PeerServerOptions): Promise<RunningPeerServer> {
  const open = new Set<TLSSocket>();
  const server = createTlsServer({
    cert: opts.tls.certPem, key: opts.tls.keyPem, ca: opts.tls.caPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3',
  }, (sock) => {
    open.add(sock);
    sock.on('close', () => open.delete(sock));
    sock.on('error', (err: Error) => opts.log.debug({ err }, 'peer connection error'));
    const peer = subjectOf((sock.getPeerCertificate() as PeerCertificate | undefined)?.raw);
    if (peer.role !== 'proxy') {
      opts.log.warn({ addr: sock.remoteAddress, role: peer.role, name: peer.name }, 'refused a peer connection: not a proxy of this cluster');
      sock.destroy();
      return;
    }
    serveRelay(opts, sock, peer.name ?? '');
  });
  server.on('tlsClientError', (err) => opts.log.info({ err: err.message }, 'refused a peer connection: no certificate of this cluster'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: Error) => reject(listenError(err, opts.addr, '--peer-addr')));
    server.listen(opts.addr.port, opts.addr.host, () => { server.removeAllListeners('error'); resolve(); });
  });
  server.on('error', (err: Error) => opts.log.error({ err }, 'peer listener error'));
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : opts.addr.port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of open) s.destroy();
    }),
  };
}

/** One relayed joiner on A. */
function serveRelay(opts: PeerServerOptions, sock: TLSSocket, peerName: string): void {
  const reader = new FrameReader();
  let me: Participant | undefined;
  let ended = false;
  const timer = setTimeout(() => sock.destroy(), OPEN_TIMEOUT_MS);
  const refuse = (err: unknown): void => {
    clearTimeout(timer);
    const { status, body } = errorToBody(err);
    ended = true;
    sock.end(frame(T.error, { status, ...body }));
  };
  const start = (req: { session?: unknown; user?: unknown; mode?: unknown; clientAddr?: unknown }): void => {
    clearTimeout(timer);
    if (typeof req.user !== 'string' || req.user === '' || (req.mode !== 'observer' && req.mode !== 'peer') || typeof req.session !== 'string') {
      throw new ValidationError('a relayed join needs session, user and mode (observer or peer)');
    }
    const user = req.user;
    const mode: JoinMode = req.mode;
    const live = opts.hub.get(req.session);
    const info: SessionInfo = {
      id: live.id, recordingId: live.recordingId, node: live.start.node, login: live.start.login, owner: live.start.user,
      cols: live.terminalSize.cols, rows: live.terminalSize.rows, participants: live.describe().participants,
    };
    sock.write(frame(T.session, info));
    const io: ParticipantIo = {
      user, mode,
      write: (d) => {
        if (ended) return;
        if (sock.writableLength > HIGH_WATER) {
          io.close('the joiner fell too far behind the session');
          me?.leave();
          return;
        }
        sock.write(frame(T.data, d));
      },
      notice: (text) => { if (!ended) sock.write(frame(T.notice, { text, participants: live.describe().participants })); },
      close: (reason) => {
        if (ended) return;
        ended = true;
        sock.end(frame(T.exit, { reason, exitCode: live.exitCode ?? null }));
      },
    };
    me = live.attach(io);
    opts.log.info({ user, session: live.id, mode, viaProxy: peerName, clientAddr: req.clientAddr }, 'joined a live session through another proxy');
  };
  sock.on('data', (chunk: Buffer) => {
    let frames;
    try { frames = reader.push(chunk); } catch (err) { refuse(err); return; }
    for (const f of frames) {
      if (me) {
        if (f.type === T.input) me.input(f.body);
        continue;
      }
      if (ended) return;
      if (f.type !== T.join) { refuse(new ValidationError('a relay must start with a join')); return; }
      try { start(json(f.body)); } catch (err) { refuse(err); return; }
    }
  });
  sock.on('close', () => {
    clearTimeout(timer);
    ended = true;
    me?.leave();
  });
}

/** B's side: a session A carries, as the joiner on B sees it. */
class RemoteSession implements JoinableSession {
  readonly id: string;
  readonly recordingId: string;
  readonly start: { user: string; node: string; login: string };
  readonly terminalSize: { cols: number; rows: number };
  exitCode: number | undefined;
  private participants: ActiveSession['participants'];
  private io: ParticipantIo | undefined;
  private readonly early: Array<{ type: number; body: Buffer }> = [];
  private ended = false;
  private readonly sock: TLSSocket;
  private readonly proxy: string;

  constructor(sock: TLSSocket, info: SessionInfo, proxy: string) {
    this.sock = sock;
    this.proxy = proxy;
    this.id = info.id;
    this.recordingId = info.recordingId;
    this.start = { user: info.owner, node: info.node, login: info.login };
    this.terminalSize = { cols: info.cols, rows: info.rows };
    this.participants = info.participants;
  }

  describe(): Pick<ActiveSession, 'participants'> {
    return { participants: this.participants };
  }

  attach(io: ParticipantIo): Participant {
    this.io = io;
    for (const f of this.early.splice(0)) this.handle(f);
    const sock = this.sock;
    const session = this;
    return {
      id: randomBytes(6).toString('hex'), user: io.user, mode: io.mode,
      input(data: Buffer): boolean {
        if (session.ended || io.mode === 'observer') return false;
        sock.write(frame(T.input, data));
        return true;
      },
      resize(): void { /* only the owner's size counts, and the owner is on the carrying proxy */ },
      leave(): void {
        session.ended = true;
        sock.end();
      },
    };
  }

  /** @internal: a frame from A. */
  handle(f: { type: number; body: Buffer }): void {
    const io = this.io;
    if (!io) { this.early.push(f); return; }
    if (f.type === T.data) { if (!this.ended) io.write(f.body); return; }
    if (f.type === T.notice) {
      const n = json<{ text: string; participants?: ActiveSession['participants'] }>(f.body);
      if (Array.isArray(n.participants)) this.participants = n.participants;
      io.notice(String(n.text));
      return;
    }
    if (f.type === T.exit) {
      const x = json<{ reason: string; exitCode: number | null }>(f.body);
      if (typeof x.exitCode === 'number') this.exitCode = x.exitCode;
      this.finish(String(x.reason));
    }
  }

  /** @internal: the relay ended; `reason` goes to the joiner once. */
  finish(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.io?.close(reason);
    this.sock.end();
  }

  /** @internal: the connection to A dropped. */
  lost(): void {
    if (!this.io) { this.early.push({ type: T.exit, body: Buffer.from(JSON.stringify({ reason: this.lostReason(), exitCode: null })) }); return; }
    this.finish(this.lostReason());
  }

  private lostReason(): string {
    return `the connection to proxy ${this.proxy}, which carries the session, was lost`;
  }
}

/** The peer joiner's options. */
export interface PeerJoinOptions {
  tls: PeerTls;
  log: Logger;
  /** How long connecting and A's answer may take (10 s). */
  timeoutMs?: number;
}

/** B's side: opens a session another proxy carries, relaying the joiner through it. */
export function peerJoiner(opts: PeerJoinOptions): RemoteJoin {
  return (s: ActiveSession, joiner: Joiner) => new Promise<JoinableSession>((resolve, reject) => {
    let addr: { host: string; port: number };
    try { addr = parseHostPort(s.proxyPeerAddr ?? '', DEFAULT_PEER_PORT); } catch (err) { reject(err as Error); return; }
    const where = `proxy ${s.proxy} at ${formatHostPort(addr.host, addr.port)}`;
    let remote: RemoteSession | undefined;
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    const sock = tlsConnect({
      host: addr.host, port: addr.port, ca: opts.tls.caPem, cert: opts.tls.certPem, key: opts.tls.keyPem, minVersion: 'TLSv1.3',
      ...(/^[\d.]+$/.test(addr.host) || addr.host.includes(':') ? {} : { servername: addr.host }),
      // Trust by who the certificate says it is, not by the address: the proxy auth recorded as carrying the session.
      checkServerIdentity: (_host, cert) => {
        const peer = subjectOf(cert?.raw);
        if (peer.role !== 'proxy' || peer.name !== s.proxy) {
          return new ConnectionError(`the peer at ${formatHostPort(addr.host, addr.port)} is not proxy ${s.proxy} of this cluster`);
        }
        return undefined;
      },
    });
    const timer = setTimeout(() => fail(new ConnectionError(`${where}, which carries session ${s.id}, did not answer in time`, {
      hint: 'Check that the proxies reach each other on their --peer-addr port',
    })), opts.timeoutMs ?? OPEN_TIMEOUT_MS);
    sock.setKeepAlive(true, 15_000);
    sock.once('secureConnect', () => {
      sock.write(frame(T.join, { session: s.id, user: joiner.user, mode: joiner.mode, clientAddr: joiner.clientAddr }));
    });
    const reader = new FrameReader();
    sock.on('data', (chunk: Buffer) => {
      let frames;
      try { frames = reader.push(chunk); } catch (err) { fail(err as Error); remote?.finish('the carrying proxy sent a bad frame'); return; }
      for (const f of frames) {
        if (remote) { remote.handle(f); continue; }
        if (f.type === T.error) {
          const b = json<{ status?: number }>(f.body);
          fail(errorFromBody(b.status ?? 502, b, `proxy ${s.proxy}`));
          return;
        }
        if (f.type !== T.session) { fail(new ConnectionError(`${where} answered a join with something else`)); return; }
        remote = new RemoteSession(sock, json<SessionInfo>(f.body), s.proxy);
        settled = true;
        clearTimeout(timer);
        opts.log.info({ user: joiner.user, session: s.id, mode: joiner.mode, carrier: s.proxy }, 'relaying a join to the proxy that carries the session');
        resolve(remote);
      }
    });
    sock.on('error', (err: Error) => {
      if (remote) { opts.log.info({ err, session: s.id }, 'peer relay error'); return; }
      fail(new ConnectionError(`cannot reach ${where}, which carries session ${s.id}: ${err.message}`, {
        cause: err, hint: 'Check that the proxies reach each other on their --peer-addr port, or try again: a dead proxy\'s sessions leave the list within seconds',
      }));
    });
    sock.on('close', () => {
      if (remote) remote.lost();
      else fail(new NotFoundError(`${where} closed the connection before it answered the join of session ${s.id}`));
    });
  });
}

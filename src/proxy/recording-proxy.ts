/**
 * Recording proxy mode (`session_recording: proxy`, set on auth). A connection through the
 * proxy's SSH listener to a node (`proxy:HOST:PORT` subsystem, `direct-tcpip` of `ssh -J`)
 * is not piped to the node: the proxy terminates the inner SSH itself, with an ssh2 Server
 * run over the channel, and opens its own SSH connection to the node, so that it can
 * record what the node's terminal shows. The seed's warning stands: this mode gives the
 * proxy more privilege (it signs with users' forwarded agents while their sessions run).
 *
 *   client ──SSH (outer, to the listener)──▶ proxy ──TCP──▶ node sshd
 *          ══SSH (inner, terminated here)══▶ proxy ══SSH (the proxy's own)══▶ node
 *
 * - The inner server presents the proxy's host key with a host certificate for the node's
 *   names, issued on demand by auth's host CA (cached until half its life), so OpenSSH's
 *   strict host key checking against the cluster's `@cert-authority` line passes.
 * - It accepts only a user certificate of the cluster's CA, of the same user as the outer
 *   connection, for a login among its principals; auth authorizes that login on the node.
 * - It logs in to the node with the client's forwarded agent (`ssh -A`): only certificates
 *   of the cluster's user CA for this user are offered; the proxy never holds the key.
 *   Without forwarding, a shell or command gets a message that says how to turn it on,
 *   and exit status 255.
 * - Shells and commands go through the SessionHub: recorded (asciicast v2), listed in
 *   `sessions ls`, joinable when they have a terminal. PTY requests, window changes,
 *   signals, env, exit status and signal, agent forwarding on to the node, `sftp` and other
 *   subsystems, and port forwards (-L and -R) are carried. Starts, ends, commands and port
 *   forwards are audit events.
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import type { Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { AuthContext, Client, ClientChannel, Connection, PseudoTtyInfo, ServerChannel, Session, TcpipRequestInfo } from 'ssh2';
import type { NodeInfo } from '../api/types.ts';
import type { ProxyAuditEvent } from '../api/audit.ts';
import type { RecordingProxyAuth } from '../api/proxy-auth.ts';
import type { Logger } from '../core/logger.ts';
import type { Clock } from '../core/clock.ts';
import { formatAuthorizedKey } from '../ssh/keys.ts';
import type { SshKeyPair } from '../ssh/keys.ts';
import { parseCertificate } from '../ssh/certs.ts';
import type { SshCertificate } from '../ssh/certs.ts';
import { certHostKey } from '../ssh/ssh2-certs.ts';
import { AGENT_FORWARDING_HINT, ForwardedAgent, openAgentChannel } from '../ssh/forwarded-agent.ts';
import { PosternError } from '../core/errors.ts';
import { loginNotAllowedError } from '../api/refusals.ts';
import { escapeControl } from '../core/text.ts';
import { connectNodeWithAgent } from './node-client.ts';
import type { LiveSession, Participant, SessionHub } from './session-hub.ts';
import { authorizeNode } from './node-dialer.ts';
import { checkSshCertLogin } from './cert-auth.ts';
import { certPermits } from '../ssh/cert-options.ts';
import type { PermitExtension } from '../ssh/cert-options.ts';
import type { ClusterFacts, ClusterInfoSource } from './cluster-info.ts';
import { accountOf } from './cluster-info.ts';
import { pipeBoth } from '../core/pipe.ts';
import { PROXY_SERVER_ALGORITHMS } from './ssh-algorithms.ts';

/**
 * After a write to `to`: while `to` is above its high-water mark (an ssh2 channel's is its
 * 2 MiB window), `from` waits for it to drain.
 */
function holdBack(from: Readable, to: Writable): void {
  if (!to.writableNeedDrain || from.isPaused()) return;
  from.pause();
  to.once('drain', () => from.resume());
}

/** What every recording-mode connection shares. */
export interface RecordingProxyOptions {
  auth: RecordingProxyAuth;
  hub: SessionHub;
  hostKey: SshKeyPair;
  log: Logger;
  clock: Clock;
  /** The proxy's shared cluster facts (CA keys and name). */
  cluster: ClusterInfoSource;
}

/** One connection to terminate. */
export interface RecordedConnection {
  /** The outer channel: the inner SSH runs over it. */
  channel: Duplex;
  /** The node's sshd, already authorized and dialled. */
  nodeSock: Socket;
  /** The Postern user of the outer connection. */
  user: string;
  clientAddr: string;
  /** The node as the user named it, and what auth resolved it to. */
  target: string;
  port: number;
  node?: NodeInfo;
  via: 'subsystem' | 'direct-tcpip';
}

const HOST_CERT_TTL_MS = 12 * 3_600_000;
const NOT_FORWARDED = `Postern records sessions on this cluster, which needs agent forwarding: the proxy logs in to the node with your certificate through your agent.\r\nhint: ${AGENT_FORWARDING_HINT}`;

/** Terminates inner SSH connections for one listener. */
export class RecordingProxy {
  private readonly opts: RecordingProxyOptions;
  private readonly certs = new Map<string, { cert: SshCertificate; until: number }>();

  constructor(opts: RecordingProxyOptions) {
    this.opts = opts;
  }

  /** The host certificate for these names, from auth, reused until half its life. */
  private async hostCert(names: string[]): Promise<SshCertificate> {
    const key = names.join(',');
    const now = this.opts.clock.now().getTime();
    const hit = this.certs.get(key);
    if (hit && hit.until > now) return hit.cert;
    const line = await this.opts.auth.signHostCert({ publicKey: formatAuthorizedKey(this.opts.hostKey.publicWire), principals: names, ttlMs: HOST_CERT_TTL_MS });
    // Parsed once here; ssh2's form is made from it where the server is built.
    const cert = parseCertificate(line);
    this.certs.set(key, { cert, until: now + HOST_CERT_TTL_MS / 2 });
    return cert;
  }

  /** Runs the inner SSH server over the channel; returns once it is running. */
  async serve(conn: RecordedConnection): Promise<void> {
    const cluster = await this.opts.cluster.get();
    const names = [...new Set([
      conn.target, `${conn.target}.${cluster.name}`,
      ...(conn.node ? [conn.node.name, `${conn.node.name}.${cluster.name}`] : []),
    ])].filter((n) => /^[A-Za-z0-9._:-]{1,253}$/.test(n));
    const cert = await this.hostCert(names);
    const server = new ssh2.Server({
      hostKeys: [certHostKey(this.opts.hostKey, cert) as never],
      ident: 'Postern-recording',
      algorithms: PROXY_SERVER_ALGORITHMS,
    }, (inner: Connection) => new InnerConnection(this.opts, conn, inner, cluster, names).run());
    server.on('error', (err: Error) => this.opts.log.warn({ err }, 'recording proxy error'));
    server.injectSocket(conn.channel as never);
  }
}

/** One terminated connection: the client's inner SSH on one side, the node on the other. */
class InnerConnection {
  private readonly opts: RecordingProxyOptions;
  private readonly conn: RecordedConnection;
  private readonly inner: Connection;
  private readonly cluster: ClusterFacts;
  private readonly names: string[];
  private readonly log: Logger;
  private login = '';
  /** The certificate the client logged in with: its permit-* extensions hold here as at sshd. */
  private cert: SshCertificate | undefined;
  private nodeClient: Promise<Client> | undefined;
  private agentForwarded = false;
  private remoteForwards = false;
  private closed = false;
  /** The client's session channels, told why when a lock or a reset cuts the connection. */
  private readonly channels = new Set<ServerChannel>();
  private unregisterLive: (() => void) | undefined;

  constructor(opts: RecordingProxyOptions, conn: RecordedConnection, inner: Connection, cluster: InnerConnection['cluster'], names: string[]) {
    this.opts = opts;
    this.conn = conn;
    this.inner = inner;
    this.cluster = cluster;
    this.names = names;
    this.log = opts.log.child({ user: conn.user, clientAddr: conn.clientAddr, target: conn.target, mode: 'recording' });
  }

  run(): void {
    const inner = this.inner;
    inner.on('error', (err: Error) => this.log.debug({ err }, 'inner connection error'));
    inner.on('close', () => this.close());
    this.conn.nodeSock.on('error', (err) => this.log.debug({ err }, 'node socket error'));
    inner.on('authentication', (ctx: AuthContext) => void this.authenticate(ctx));
    inner.on('ready', () => {
      inner.on('session', (accept) => this.session(accept()));
      inner.on('tcpip', (accept, reject, info: TcpipRequestInfo) => void this.directTcpip(accept, reject, info));
      inner.on('request', (accept, reject, name, info) => void this.globalRequest(accept, reject, name, info as { bindAddr: string; bindPort: number }));
    });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unregisterLive?.();
    void this.nodeClient?.then((c) => c.end(), () => {});
    this.conn.nodeSock.destroy();
  }

  /** The same checks as the listener, plus: the same user as outside, and auth's word on the login. */
  private async authenticate(ctx: AuthContext): Promise<void> {
    if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
    try {
      const cert = checkSshCertLogin(ctx, {
        userCaKeys: this.cluster.userCaKeys, now: this.opts.clock.now(), user: this.conn.user, clientAddr: this.conn.clientAddr,
        checkLogin: (c, login) => {
          if (!c.principals.includes(login)) throw loginNotAllowedError(login, c.principals);
        },
      });
      if (!cert) return ctx.accept();
      await this.opts.cluster.checkAccount(cert);
      await authorizeNode(this.opts.auth, { user: cert.keyId, principals: cert.principals, login: ctx.username, clientAddr: this.conn.clientAddr }, this.conn.target, this.conn.port, 'recording');
      this.login = ctx.username;
      // While it lasts, a lock or a reset that comes to cover it ends it (live-conns.ts).
      this.unregisterLive?.();
      this.unregisterLive = this.opts.cluster.live.add({
        user: cert.keyId, account: accountOf(cert), login: ctx.username, node: this.conn.node?.name ?? this.conn.target,
        via: 'recording', clientAddr: this.conn.clientAddr, close: (message) => this.terminate(message),
      });
      this.cert = cert;
      ctx.accept();
    } catch (err) {
      if ((err as PosternError).code === 'ERR_POSTERN_CERT_REQUIRED') return ctx.reject(['publickey']);
      this.log.info({ login: ctx.username, reason: (err as Error).message }, 'recording proxy refused a login');
      ctx.reject(['publickey']);
    }
  }

  /** Ends the connection for a reason the user is told on every open session channel. */
  private terminate(message: string): void {
    for (const ch of this.channels) {
      try {
        ch.stderr.write(`\r\n[postern] ${escapeControl(message)}\r\n`);
        ch.exit(255);
        ch.end();
      } catch { /* already closed */ }
    }
    // Let the channels' last packets go out before the connection does.
    setImmediate(() => { this.inner.end(); this.close(); });
  }

  /** The node connection, made once, with the client's forwarded agent. */
  private node(): Promise<Client> {
    this.nodeClient ??= (async () => {
      const ca = this.cluster.userCaKeys;
      const user = this.conn.user;
      const agent = new ForwardedAgent(() => openAgentChannel(this.inner), {
        // Only this user's certificates of this cluster sign for the node.
        filter: (id) => {
          try {
            const c = parseCertificate(id.wire);
            return c.keyId === user && ca.some((k) => k.equals(c.signatureKey));
          } catch {
            return false;
          }
        },
      });
      const client = await connectNodeWithAgent({
        sock: this.conn.nodeSock, login: this.login, agent, agentForward: true,
        hostCaKeys: this.cluster.hostCaKeys, names: this.names, label: this.conn.target, now: () => this.opts.clock.now(),
      });
      client.on('error', (err: Error) => this.log.info({ err }, 'node connection error'));
      client.on('close', () => this.inner.end());
      return client;
    })();
    return this.nodeClient;
  }

  private audit(type: ProxyAuditEvent['type'], fields: Record<string, unknown>, success = true): void {
    void this.opts.auth.emitAudit({
      type, user: this.conn.user, addr: this.conn.clientAddr, success, node: this.conn.node?.name ?? this.conn.target, login: this.login, ...fields,
    }).catch((err: unknown) => this.log.warn({ err }, 'could not write an audit event'));
  }

  private session(session: Session): void {
    let pty: PseudoTtyInfo | undefined;
    const env: Record<string, string> = {};
    let agentRequested = false;
    let started: { live?: LiveSession; owner?: Participant; stream?: ClientChannel } | undefined;
    session.on('pty', (accept, reject, info) => {
      if (!this.permits('permit-pty')) return reject?.();
      pty = info;
      accept?.();
    });
    session.on('env', (accept, _reject, info) => {
      if (/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(info.key) && info.val.length < 4096) env[info.key] = info.val;
      accept?.();
    });
    session.on('auth-agent', (accept, reject) => {
      // Without permit-agent-forwarding the proxy may not take the agent (then NOT_FORWARDED says why the session cannot start).
      if (!this.permits('permit-agent-forwarding')) return reject?.();
      agentRequested = true;
      this.agentForwarded = true;
      accept?.();
    });
    session.on('x11', (_accept, reject) => reject?.());
    session.on('window-change', (accept, _reject, info) => {
      accept?.();
      if (pty) pty = { ...pty, cols: info.cols, rows: info.rows };
      if (started?.owner) started.owner.resize(info.cols, info.rows);
      else started?.stream?.setWindow(info.rows, info.cols, info.height, info.width);
    });
    session.on('signal', (accept, _reject, info) => { accept?.(); started?.stream?.signal(info.name); });
    const begin = (ch: ServerChannel, what: { command?: string; subsystem?: string }): void => {
      this.channels.add(ch);
      ch.on('close', () => this.channels.delete(ch));
      if (!this.agentForwarded) {
        ch.stderr.write(`${NOT_FORWARDED}\r\n`);
        ch.exit(255);
        ch.end();
        this.audit('session.start', { reason: 'no agent forwarding', ...what }, false);
        return;
      }
      started = {};
      void this.start(ch, what, pty, env, agentRequested, started).catch((err: Error) => {
        ch.stderr.write(`error: ${escapeControl(err.message)}\r\n${(err as PosternError).hint ? `hint: ${(err as PosternError).hint}\r\n` : ''}`);
        ch.exit(255);
        ch.end();
      });
    };
    session.on('shell', (accept) => begin(accept(), {}));
    session.on('exec', (accept, _reject, info) => begin(accept(), { command: info.command }));
    session.on('subsystem', (accept, _reject, info) => begin(accept(), { subsystem: info.name }));
  }

  private async start(
    ch: ServerChannel, what: { command?: string; subsystem?: string }, pty: PseudoTtyInfo | undefined,
    env: Record<string, string>, agentForward: boolean, started: { live?: LiveSession; owner?: Participant; stream?: ClientChannel },
  ): Promise<void> {
    const node = await this.node();
    const opts = { ...(Object.keys(env).length ? { env } : {}), ...(agentForward ? { agentForward: true } : {}) };
    const ptyOpts = pty ? { term: pty.term || 'xterm', cols: pty.cols, rows: pty.rows, width: pty.width, height: pty.height, modes: pty.modes as never } : undefined;
    const stream = await new Promise<ClientChannel>((resolve, reject) => {
      const cb = (err: Error | undefined, s: ClientChannel): void => (err ? reject(err) : resolve(s));
      if (what.subsystem !== undefined) node.subsys(what.subsystem, cb);
      else if (what.command !== undefined) node.exec(what.command, { ...opts, ...(ptyOpts ? { pty: ptyOpts } : {}) } as never, cb);
      else node.shell(ptyOpts ?? false, opts as never, cb);
    });
    started.stream = stream;
    stream.on('error', (err: Error) => this.log.debug({ err }, 'node channel error'));
    ch.on('error', (err: Error) => this.log.debug({ err }, 'client channel error'));
    if (what.subsystem !== undefined) {
      // A file transfer (sftp) is not a terminal: carried and audited, not recorded.
      this.audit('session.exec', { command: `subsystem ${what.subsystem}` });
      this.relaySubsystem(stream, ch);
      return;
    }
    const live = await this.opts.hub.start({
      kind: 'ssh', user: this.conn.user, node: this.conn.node?.name ?? this.conn.target, login: this.login,
      width: pty?.cols || 80, height: pty?.rows || 24, ...(pty?.term ? { term: pty.term } : {}), clientAddr: this.conn.clientAddr,
      ...(what.command !== undefined ? { command: what.command } : {}),
    }, {
      // A peer may type after the owner's EOF ended the node's input: dropped, never a write after end.
      toNode: (d) => { if (!stream.writableEnded && !stream.destroyed) stream.write(d); },
      resizeNode: (cols, rows) => stream.setWindow(rows, cols, 0, 0),
    });
    started.live = live;
    const owner = live.attach({
      user: this.conn.user, mode: 'owner',
      // The owner gets the node's bytes straight from the node (stdout and stderr apart).
      write: () => {},
      notice: (text) => { try { ch.stderr.write(`\r\n[postern] ${text}\r\n`); } catch { /* closed */ } },
      close: () => {},
    });
    started.owner = owner;
    this.audit('session.start', { sessionId: live.id, recording: live.recordingId, ...(what.command !== undefined ? { command: what.command } : {}) });
    if (what.command !== undefined) this.audit('session.exec', { sessionId: live.id, command: what.command });
    // A client that reads slowly holds the node back (and a slow node the client), as the
    // pipe does, instead of the proxy's memory.
    stream.on('data', (d: Buffer) => { live.output(d); ch.write(d); holdBack(stream, ch); });
    stream.stderr.on('data', (d: Buffer) => { live.output(d); ch.stderr.write(d); holdBack(stream.stderr, ch.stderr); });
    ch.on('data', (d: Buffer) => { owner.input(d); holdBack(ch, stream); });
    // ssh2 signals the client's EOF on a server channel as 'end'.
    ch.on('end', () => stream.end());
    let exitCode: number | undefined;
    stream.on('exit', (code: number | null) => { if (typeof code === 'number') exitCode = code; });
    this.relayExit(stream, ch);
    stream.on('close', () => {
      owner.leave();
      try { ch.end(); } catch { /* closed */ }
      void live.end(exitCode).then((summary) => this.audit('session.end', { sessionId: live.id, recording: summary.id, exitCode: exitCode ?? null, lostBytes: summary.lostBytes }));
    });
    ch.on('close', () => stream.close());
  }

  /**
   * Carries a subsystem (sftp) both ways. The node's EOF must not end the client's channel:
   * ssh2 sends EOF and CLOSE together on a server channel's end(), and the node's
   * exit-status comes after its EOF, so an ended channel would drop it (scp then reports
   * "exit status -1"). The client's channel ends when the node's closes, after its exit.
   */
  private relaySubsystem(stream: ClientChannel, ch: ServerChannel): void {
    stream.pipe(ch, { end: false });
    stream.stderr.pipe(ch.stderr, { end: false });
    ch.pipe(stream);
    this.relayExit(stream, ch);
    stream.on('close', () => { try { ch.end(); } catch { /* closed */ } });
    ch.on('close', () => { try { stream.close(); } catch { /* closed */ } });
  }

  /** Passes the node's exit status or signal on while the client's channel is still open. */
  private relayExit(stream: ClientChannel, ch: ServerChannel): void {
    stream.on('exit', (code: number | null, signal?: string, dumped?: boolean, desc?: string) => {
      if (typeof code === 'number') ch.exit(code); else if (signal) ch.exit(signal, Boolean(dumped), desc ?? '');
    });
  }

  /** Whether the client's certificate grants `ext`. */
  private permits(ext: PermitExtension): boolean {
    return this.cert !== undefined && certPermits(this.cert, ext);
  }

  /** `ssh -L`: a direct-tcpip channel from the client, opened from the node. */
  private async directTcpip(accept: () => ServerChannel, reject: () => void, info: TcpipRequestInfo): Promise<void> {
    if (!this.permits('permit-port-forwarding')) return reject();
    try {
      const node = await this.node();
      const out = await new Promise<ClientChannel>((resolve, rej) => node.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, s) => (err ? rej(err) : resolve(s))));
      const ch = accept();
      this.audit('port.forward', { direction: 'local', host: info.destIP, port: info.destPort });
      out.on('error', (err: Error) => this.log.debug({ err }, 'forwarded channel error (node)'));
      ch.on('error', (err: Error) => this.log.debug({ err }, 'forwarded channel error (client)'));
      pipeBoth(out, ch);
    } catch (err) {
      this.audit('port.forward', { direction: 'local', host: info.destIP, port: info.destPort, reason: (err as Error).message }, false);
      reject();
    }
  }

  /** `ssh -R`: the node listens, and each connection comes back to the client. */
  private async globalRequest(accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined, name: string, info: { bindAddr: string; bindPort: number }): Promise<void> {
    if (name !== 'tcpip-forward' && name !== 'cancel-tcpip-forward') return reject?.();
    if (name === 'tcpip-forward' && !this.permits('permit-port-forwarding')) return reject?.();
    try {
      const node = await this.node();
      if (name === 'cancel-tcpip-forward') {
        await new Promise<void>((resolve, rej) => node.unforwardIn(info.bindAddr, info.bindPort, (err) => (err ? rej(err) : resolve())));
        return accept?.();
      }
      const port = await new Promise<number>((resolve, rej) => node.forwardIn(info.bindAddr, info.bindPort, (err, p) => (err ? rej(err) : resolve(p))));
      this.audit('port.forward', { direction: 'remote', host: info.bindAddr, port });
      if (!this.remoteForwards) {
        this.remoteForwards = true;
        node.on('tcp connection', (details, acceptIn, rejectIn) => {
          this.inner.forwardOut(details.destIP, details.destPort, details.srcIP, details.srcPort, (err, ch) => {
            if (err) return rejectIn();
            const up = acceptIn();
            up.on('error', (e: Error) => this.log.debug({ err: e }, 'remote forward channel error (node)'));
            ch.on('error', (e: Error) => this.log.debug({ err: e }, 'remote forward channel error (client)'));
            pipeBoth(up, ch);
          });
        });
      }
      accept?.(port);
    } catch (err) {
      this.audit('port.forward', { direction: 'remote', host: info.bindAddr, port: info.bindPort, reason: (err as Error).message }, false);
      reject?.();
    }
  }
}

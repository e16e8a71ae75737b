/**
 * The proxy's SSH listener (--ssh-addr, default 3023). It accepts only user certificates
 * of the cluster's user CA, asks auth before every dial, and pipes bytes between the
 * client and the node's sshd: the `proxy:HOST:PORT` subsystem (what `postern proxy ssh`
 * and `postern ssh` ask for) and `direct-tcpip` channels (what OpenSSH's `ssh -J` opens).
 * Normally it never reads the inner SSH session, which runs end to end between the client
 * and the node; when the cluster records sessions at the proxy (`session_recording:
 * proxy`, asked of auth at most every 5 s), it terminates it instead (recording-proxy.ts).
 * It also carries `postern join`: the command `join ID MODE` on a session channel attaches
 * the channel to a live session of this proxy's SessionHub.
 *
 * A certificate whose user a lock covers (`postern lock`) is refused once its holder signed,
 * with the lock's reason as the disconnect's description, which OpenSSH and `postern` print.
 *
 * Before a login it applies sshd's defences (conn-limits.ts): MaxStartups and a per-source
 * cap decide at the TCP accept, a connection must log in within the login grace time, and
 * one that fails MaxAuthTries logins is closed. After it, the certificate's restrictions
 * hold as sshd applies them (cert-options.ts): source-address and unknown critical options
 * refuse the login; `proxy:` subsystems and direct-tcpip need permit-port-forwarding, a pty
 * needs permit-pty, and a force-command certificate gets no session here.
 */
import ssh2 from 'ssh2';
import type { AuthContext, Connection, ServerChannel, TcpipRequestInfo } from 'ssh2';
import { createServer as createTcpServer } from 'node:net';
import type { Socket } from 'node:net';
import type { JoinMode } from '../api/types.ts';
import type { SshListenerAuth } from '../api/proxy-auth.ts';
import type { Logger } from '../core/logger.ts';
import type { Clock } from '../core/clock.ts';
import type { SshKeyPair } from '../ssh/keys.ts';
import { ssh2PrivateKey } from '../ssh/ssh2-certs.ts';
import { listenError } from '../core/listen-error.ts';
import { PosternError } from '../core/errors.ts';
import { escapeControl } from '../core/text.ts';
import { disconnectWithReason } from '../ssh/ssh2-disconnect.ts';
import { dialNode, DEFAULT_DIAL_TIMEOUT_MS } from './node-dialer.ts';
import type { DialledNode, NodeCaller } from './node-dialer.ts';
import { RecordingProxy } from './recording-proxy.ts';
import { checkSshCertLogin } from './cert-auth.ts';
import { ClusterInfoSource, accountOf } from './cluster-info.ts';
import { PROXY_SERVER_ALGORITHMS } from './ssh-algorithms.ts';
import { pipeBoth, readSshIntoPool } from '../core/pipe.ts';
import type { SessionHub } from './session-hub.ts';
import { DEFAULT_SSH_LIMITS, StartupGate, startupRefusalLine } from './conn-limits.ts';
import type { SshConnLimits } from './conn-limits.ts';
import { certPermits, notPermittedMessage } from '../ssh/cert-options.ts';
import type { SshCertificate } from '../ssh/certs.ts';

/** How the listener runs. */
export interface SshListenerOptions {
  auth: SshListenerAuth;
  hostKey: SshKeyPair;
  addr: { host: string; port: number };
  log: Logger;
  clock: Clock;
  /** How long a dial to a node may take. */
  dialTimeoutMs?: number;
  /** The proxy's live sessions (recording mode, join). */
  hub: SessionHub;
  /** The proxy's shared cluster facts (recording mode, CA keys); one of its own when not given. */
  cluster?: ClusterInfoSource;
  /** sshd's defences before a login (DEFAULT_SSH_LIMITS where not given). */
  limits?: Partial<SshConnLimits>;
}

/** A running listener. */
export interface RunningSshListener {
  port: number;
  /** Connections open now (for tests and metrics). */
  connections(): number;
  /** Connections that have not logged in yet (for tests and metrics). */
  unauthenticated(): number;
  close(): Promise<void>;
}

/** Who a connection authenticated as, with the account its certificate is bound to, and the certificate. */
type Caller = NodeCaller & { account: string; cert: SshCertificate };

const ADMINISTRATIVELY_PROHIBITED = 1;
const CONNECT_FAILED = 2;
/** SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, as sshd sends after MaxAuthTries. */
const NO_MORE_AUTH_METHODS = 14;

/** Parses the subsystem name `proxy:HOST:PORT` (HOST may be [v6], a selector, or a name). */
export function parseProxySubsystem(name: string): { host: string; port: number } | undefined {
  const m = /^proxy:(.+):(\d{1,5})$/.exec(name) ?? /^proxy:([^:]+)$/.exec(name);
  if (!m) return undefined;
  const host = m[1].replace(/^\[(.*)\]$/, '$1');
  const port = m[2] === undefined ? 0 : Number(m[2]);
  if (!host || port > 65535) return undefined;
  return { host, port };
}

/** Starts the listener. */
export async function startSshListener(opts: SshListenerOptions): Promise<RunningSshListener> {
  const cluster = opts.cluster ?? new ClusterInfoSource(opts.auth);
  await cluster.get();
  const dialTimeout = opts.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
  const open = new Set<Connection>();
  /** How many node connections each client connection carries now (not counting recording mode's). */
  const carried = new WeakMap<Connection, number>();
  const limits: SshConnLimits = { ...DEFAULT_SSH_LIMITS, ...opts.limits };
  const gate = new StartupGate(limits);
  /** Sockets before their login: the grace timer and the MaxStartups count to end at login. */
  const preAuth = new Map<Socket, { timer: NodeJS.Timeout; release: () => void }>();
  const loggedIn = (sock: Socket | undefined): void => {
    const p = sock && preAuth.get(sock);
    if (!p) return;
    clearTimeout(p.timer);
    p.release();
    preAuth.delete(sock);
  };
  const recorder = new RecordingProxy({
    auth: opts.auth, hub: opts.hub, hostKey: opts.hostKey, log: opts.log, clock: opts.clock, cluster,
  });

  /** Pipes to the node, or in recording mode terminates the inner SSH; the mode is auth's now. */
  const carry = async (client: Connection, ch: ServerChannel, dialled: DialledNode, who: Caller, target: string, port: number, via: 'subsystem' | 'direct-tcpip'): Promise<void> => {
    if ((await cluster.get()).sessionRecording !== 'proxy') {
      dialled.sock.setNoDelay(true);
      pipeBoth(ch, dialled.sock);
      // A lock or a reset that comes to cover it cuts it (live-conns.ts); in recording mode the recording proxy does, knowing the login.
      carried.set(client, (carried.get(client) ?? 0) + 1);
      let counted = true;
      const done = (): void => {
        if (counted) { counted = false; carried.set(client, (carried.get(client) ?? 1) - 1); }
        unregister();
      };
      const unregister = cluster.live.add({
        user: who.user, account: who.account, principals: who.principals, ...(who.login ? { login: who.login } : {}),
        node: dialled.decision.node?.name ?? target.toLowerCase(), via, clientAddr: who.clientAddr,
        close: (message) => {
          // A subsystem's stderr reaches the user's terminal (postern proxy ssh prints it). A direct-tcpip
          // channel (ssh -J) has none: when it is the connection's last, the connection ends with the
          // message as its disconnect reason, which OpenSSH prints.
          if (via === 'subsystem') { try { ch.stderr.write(`\r\n[postern] ${escapeControl(message)}\r\n`); ch.exit(255); } catch { /* closed */ } }
          // The disconnect goes first: a closed channel alone makes OpenSSH's jump process exit before it reads why.
          if (via === 'direct-tcpip' && (carried.get(client) ?? 0) <= 1) disconnectWithReason(client, message);
          else try { ch.close(); } catch { /* closed */ }
          dialled.sock.destroy();
        },
      });
      ch.once('close', done);
      dialled.sock.once('close', done);
      return;
    }
    await recorder.serve({
      channel: ch, nodeSock: dialled.sock, user: who.user, clientAddr: who.clientAddr, target, port, via,
      ...(dialled.decision.node ? { node: dialled.decision.node } : {}),
    });
  };

  const server = new ssh2.Server({
    hostKeys: [ssh2PrivateKey(opts.hostKey)],
    ident: 'Postern',
    algorithms: PROXY_SERVER_ALGORITHMS,
  }, (client: Connection, info) => {
    open.add(client);
    const clientAddr = info.ip;
    let caller: Caller | undefined;
    const log = opts.log.child({ clientAddr });
    const sock = (client as unknown as { _sock?: Socket })._sock;
    client.on('error', (err) => log.debug({ err }, 'ssh client connection error'));
    client.on('close', () => open.delete(client));
    sock?.setNoDelay(true);
    if (sock) readSshIntoPool(sock, client);
    let failures = 0;
    /** A failed login (not `none`, not a key query that was answered yes), counted as sshd counts MaxAuthTries. */
    const fail = (ctx: AuthContext): void => {
      failures++;
      if (failures < limits.maxAuthTries) return ctx.reject(['publickey']);
      log.info({ user: ctx.username, failures }, 'too many authentication failures: closing the connection');
      const proto = (client as unknown as { _protocol?: { disconnect(reason: number): void } })._protocol;
      try { proto?.disconnect(NO_MORE_AUTH_METHODS); } catch { /* already gone */ }
      sock?.end();
    };

    client.on('authentication', (ctx: AuthContext) => {
      void (async () => {
        if (failures >= limits.maxAuthTries) return;
        if (ctx.method === 'none') return ctx.reject(['publickey']);
        if (ctx.method !== 'publickey') return fail(ctx);
        let signed = false;
        try {
          const cert = checkSshCertLogin(ctx, {
            userCaKeys: (await cluster.get()).userCaKeys, now: opts.clock.now(), clientAddr,
            checkLogin: (c, login) => {
              if (login !== c.keyId && !c.principals.includes(login)) {
                throw new PosternError('ERR_POSTERN_CERT_PRINCIPAL', `user name "${login}" is neither the certificate's user nor one of its logins`);
              }
            },
          });
          if (!cert) return ctx.accept();
          signed = true;
          await cluster.checkAccount(cert);
          caller = {
            user: cert.keyId, principals: cert.principals, clientAddr, account: accountOf(cert), cert,
            ...(cert.principals.includes(ctx.username) ? { login: ctx.username } : {}),
          };
          ctx.accept();
        } catch (err) {
          if ((err as PosternError).code === 'ERR_POSTERN_CERT_REQUIRED') {
            log.info({ user: ctx.username, algo: ctx.key.algo }, 'refused a plain key: only certificates of this cluster are accepted');
          } else {
            log.info({ user: ctx.username, reason: (err as Error).message }, 'refused a certificate');
          }
          // The key's holder proved it is theirs, and a lock covers them: they are told the lock's
          // reason as the connection ends (as sshd says why it gives up), not left with a bare refusal.
          if (signed && (err as PosternError).code === 'ERR_POSTERN_LOCKED') {
            disconnectWithReason(client, (err as Error).message, NO_MORE_AUTH_METHODS);
            return;
          }
          fail(ctx);
        }
      })();
    });

    client.on('ready', () => {
      loggedIn(sock);
      const who = caller!;
      const forced = who.cert.criticalOptions['force-command'];
      const mayForward = certPermits(who.cert, 'permit-port-forwarding');
      client.on('session', (accept) => {
        const session = accept();
        session.on('pty', (acc, rej) => (certPermits(who.cert, 'permit-pty') ? acc?.() : rej?.()));
        session.on('env', (acc) => acc?.());
        /** A force-command certificate: sshd would run that command instead of anything asked; the proxy runs none. */
        const refuseForced = (acc: () => ServerChannel): void => {
          const ch = acc();
          ch.stderr.write(`error: this certificate forces the command "${escapeControl(forced!)}", and the Postern proxy runs no commands\r\n`);
          ch.exit(1);
          ch.end();
        };
        const refuseShell = (acc: () => ServerChannel): void => {
          const ch = acc();
          ch.stderr.write(`This is the Postern proxy: use it as a jump host (ssh -J) or with postern proxy ssh, not as a shell.\r\n`);
          ch.exit(1);
          ch.end();
        };
        session.on('shell', (acc) => (forced !== undefined ? refuseForced(acc) : refuseShell(acc)));
        session.on('exec', (acc, _rej, info) => {
          if (forced !== undefined) return refuseForced(acc);
          const join = /^join ([A-Za-z0-9_-]{8,64}) (observer|peer)$/.exec(info.command.trim());
          if (!join) return refuseShell(acc);
          void joinSession(acc(), who, join[1], join[2] as JoinMode, log);
        });
        session.on('subsystem', (acc, rej, info) => {
          const target = parseProxySubsystem(info.name);
          if (!target) { rej?.(); return; }
          if (forced !== undefined) return refuseForced(acc);
          const ch = acc();
          if (!mayForward) {
            log.info({ user: who.user, target: target.host }, 'refused a proxy subsystem: no permit-port-forwarding');
            ch.stderr.write(`error: ${notPermittedMessage('permit-port-forwarding', `connecting to ${escapeControl(target.host)}`)}\n`);
            ch.exit(255);
            ch.end();
            return;
          }
          void route(who, target.host, target.port, 'subsystem', log)
            .then((dialled) => carry(client, ch, dialled, who, target.host, target.port, 'subsystem'))
            .catch((err: Error) => {
              ch.stderr.write(`${err.message}\n`);
              ch.exit(255);
              ch.end();
            });
        });
      });
      client.on('tcpip', (accept, reject, info: TcpipRequestInfo) => {
        const rej = reject as unknown as (code?: number, desc?: string) => void;
        if (!mayForward) {
          log.info({ user: who.user, target: info.destIP }, 'refused direct-tcpip: no permit-port-forwarding');
          rej(ADMINISTRATIVELY_PROHIBITED, notPermittedMessage('permit-port-forwarding', 'port forwarding'));
          return;
        }
        // The name an `ssh -J alice@proxy root@web1` logged in with is the jump login, not
        // the node's: the login to the node runs end to end, the node's sshd checks it.
        const { login: _jumpLogin, ...jumper } = who;
        void route(jumper, info.destIP, info.destPort, 'direct-tcpip', log).then(
          (dialled) => {
            const ch = accept();
            if (!ch) { dialled.sock.destroy(); return; }
            void carry(client, ch, dialled, jumper, info.destIP, info.destPort, 'direct-tcpip').catch((err: Error) => {
              log.warn({ err }, 'recording proxy could not start');
              dialled.sock.destroy();
              ch.close();
            });
          },
          (err: PosternError) => rej(err.code === 'ERR_POSTERN_ACCESS_DENIED' || err.status === 403 || err.status === 404 ? ADMINISTRATIVELY_PROHIBITED : CONNECT_FAILED, err.message),
        );
      });
    });
  });

  /** Asks auth, then dials; every refusal happens before any dial. */
  const route = (who: NodeCaller, target: string, port: number, via: 'subsystem' | 'direct-tcpip', log: Logger): Promise<DialledNode> =>
    dialNode(opts.auth, who, target, port, via, log, dialTimeout);

  /**
   * `postern join`: auth decides, then the channel becomes a participant of the live session.
   * The joiner stays registered with the live connections (live-conns.ts) while in it: a lock,
   * reset or removal that comes to cover them removes them (exit 1, saying why); the session goes on.
   */
  const joinSession = async (ch: ServerChannel, who: Caller, id: string, mode: JoinMode, log: Logger): Promise<void> => {
    const fail = (message: string): void => {
      ch.stderr.write(`error: ${escapeControl(message)}\r\n`);
      ch.exit(1);
      ch.end();
    };
    // The joiner may leave while auth decides or a relay to another proxy opens.
    let gone = false;
    ch.once('close', () => { gone = true; });
    try {
      // The certificate's account too: the connection may have logged in before a reset.
      const s = await opts.auth.authorizeJoin({ user: who.user, sessionId: id, mode, clientAddr: who.clientAddr, account: who.account });
      // Here, or relayed to the proxy that carries it (peer-relay.ts).
      const live = await opts.hub.open(s, { user: who.user, mode, clientAddr: who.clientAddr });
      let ended = false;
      let unregister = (): void => {};
      /** The joiner's part ends: `exitCode` and `line` for them, unless they are gone. */
      const finish = (line: string, exitCode: number): void => {
        ended = true;
        unregister();
        try {
          ch.stderr.write(`\r\n[postern] ${escapeControl(line)}\r\n`);
          ch.exit(exitCode);
          ch.end();
        } catch { /* the joiner is gone */ }
      };
      const me = live.attach({
        user: who.user, mode,
        write: (d) => ch.write(d),
        notice: (text) => ch.stderr.write(`\r\n[postern] ${escapeControl(text)}\r\n`),
        close: (reason) => finish(reason, 0),
      });
      if (!ended) {
        unregister = cluster.live.add({
          user: who.user, account: who.account, login: live.start.login, node: live.start.node, via: 'join', clientAddr: who.clientAddr,
          sessionId: live.id, ends: `removed from session ${live.id}`,
          close: (message) => {
            // Everyone else sees them leave; the session goes on.
            me.leave();
            finish(message, 1);
          },
        });
      }
      log.info({ user: who.user, session: id, mode }, 'joined a live session');
      ch.on('error', (err: Error) => log.debug({ err, session: id }, 'join channel error'));
      ch.on('data', (d: Buffer) => me.input(d));
      ch.on('close', () => { unregister(); if (!ended) me.leave(); });
      ch.on('end', () => { if (!ended) { unregister(); me.leave(); ch.exit(0); ch.end(); } });
      if (gone) { unregister(); me.leave(); }
    } catch (err) {
      fail((err as Error).message);
    }
  };

  // The listener's own TCP server decides at accept (ssh2 would see a connection only once
  // its client sent the SSH banner, so an idle socket would never reach it), then hands the
  // socket to ssh2.
  let lastRefusalLog = 0;
  let refusedUnlogged = 0;
  const tcp = createTcpServer((raw) => {
    const verdict = gate.admit(raw.remoteAddress);
    if (!verdict.ok) {
      // A flood must not become a flood of log lines: one a second, with how many it stands for.
      refusedUnlogged++;
      const now = Date.now();
      if (now - lastRefusalLog >= 1000) {
        opts.log.info({ clientAddr: raw.remoteAddress, why: verdict.why, unauthenticated: gate.unauthenticated(), refused: refusedUnlogged }, 'refused a connection before login');
        lastRefusalLog = now;
        refusedUnlogged = 0;
      }
      raw.on('error', () => {});
      raw.end(startupRefusalLine(verdict.why, limits));
      raw.destroySoon();
      return;
    }
    const timer = setTimeout(() => {
      opts.log.info({ clientAddr: raw.remoteAddress, loginGraceMs: limits.loginGraceMs }, 'timeout before authentication: closing the connection');
      raw.destroy();
    }, limits.loginGraceMs);
    preAuth.set(raw, { timer, release: verdict.release });
    raw.once('close', () => {
      loggedIn(raw);
    });
    server.injectSocket(raw);
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', (err: Error) => reject(listenError(err, opts.addr, '--ssh-addr')));
    tcp.listen(opts.addr.port, opts.addr.host, () => { tcp.removeAllListeners('error'); resolve(); });
  });
  tcp.on('error', (err: Error) => opts.log.error({ err }, 'ssh listener error'));
  server.on('error', (err: Error) => opts.log.error({ err }, 'ssh listener error'));
  const a = tcp.address();
  return {
    port: typeof a === 'object' && a ? a.port : opts.addr.port,
    connections: () => open.size,
    unauthenticated: () => gate.unauthenticated(),
    async close() {
      await new Promise<void>((resolve) => {
        tcp.close(() => resolve());
        for (const c of open) c.end();
        for (const raw of preAuth.keys()) raw.destroy();
      });
    },
  };
}

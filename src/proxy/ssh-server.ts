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
 */
import ssh2 from 'ssh2';
import type { AuthContext, Connection, ServerChannel, TcpipRequestInfo } from 'ssh2';
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
import { pipeBoth } from '../core/pipe.ts';
import type { SessionHub } from './session-hub.ts';

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
}

/** A running listener. */
export interface RunningSshListener {
  port: number;
  /** Connections open now (for tests and metrics). */
  connections(): number;
  close(): Promise<void>;
}

/** Who a connection authenticated as, with the account its certificate is bound to. */
type Caller = NodeCaller & { account: string };

const ADMINISTRATIVELY_PROHIBITED = 1;
const CONNECT_FAILED = 2;

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
    client.on('error', (err) => log.debug({ err }, 'ssh client connection error'));
    client.on('close', () => open.delete(client));
    (client as unknown as { _sock?: Socket })._sock?.setNoDelay(true);

    client.on('authentication', (ctx: AuthContext) => {
      void (async () => {
        if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
        try {
          const cert = checkSshCertLogin(ctx, {
            userCaKeys: (await cluster.get()).userCaKeys, now: opts.clock.now(),
            checkLogin: (c, login) => {
              if (login !== c.keyId && !c.principals.includes(login)) {
                throw new PosternError('ERR_POSTERN_CERT_PRINCIPAL', `user name "${login}" is neither the certificate's user nor one of its logins`);
              }
            },
          });
          if (!cert) return ctx.accept();
          await cluster.checkAccount(cert);
          caller = {
            user: cert.keyId, principals: cert.principals, clientAddr, account: accountOf(cert),
            ...(cert.principals.includes(ctx.username) ? { login: ctx.username } : {}),
          };
          ctx.accept();
        } catch (err) {
          if ((err as PosternError).code === 'ERR_POSTERN_CERT_REQUIRED') {
            log.info({ user: ctx.username, algo: ctx.key.algo }, 'refused a plain key: only certificates of this cluster are accepted');
          } else {
            log.info({ user: ctx.username, reason: (err as Error).message }, 'refused a certificate');
          }
          ctx.reject(['publickey']);
        }
      })();
    });

    client.on('ready', () => {
      const who = caller!;
      client.on('session', (accept) => {
        const session = accept();
        session.on('pty', (acc) => acc?.());
        session.on('env', (acc) => acc?.());
        const refuseShell = (acc: () => ServerChannel): void => {
          const ch = acc();
          ch.stderr.write(`This is the Postern proxy: use it as a jump host (ssh -J) or with postern proxy ssh, not as a shell.\r\n`);
          ch.exit(1);
          ch.end();
        };
        session.on('shell', (acc) => refuseShell(acc));
        session.on('exec', (acc, _rej, info) => {
          const join = /^join ([A-Za-z0-9_-]{8,64}) (observer|peer)$/.exec(info.command.trim());
          if (!join) return refuseShell(acc);
          void joinSession(acc(), who, join[1], join[2] as JoinMode, log);
        });
        session.on('subsystem', (acc, rej, info) => {
          const target = parseProxySubsystem(info.name);
          if (!target) { rej?.(); return; }
          const ch = acc();
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
        void route(who, info.destIP, info.destPort, 'direct-tcpip', log).then(
          (dialled) => {
            const ch = accept();
            if (!ch) { dialled.sock.destroy(); return; }
            void carry(client, ch, dialled, who, info.destIP, info.destPort, 'direct-tcpip').catch((err: Error) => {
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
  const route = (who: Caller, target: string, port: number, via: 'subsystem' | 'direct-tcpip', log: Logger): Promise<DialledNode> =>
    dialNode(opts.auth, who, target, port, via, log, dialTimeout);

  /** `postern join`: auth decides, then the channel becomes a participant of the live session. */
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
      const s = await opts.auth.authorizeJoin({ user: who.user, sessionId: id, mode, clientAddr: who.clientAddr });
      // Here, or relayed to the proxy that carries it (peer-relay.ts).
      const live = await opts.hub.open(s, { user: who.user, mode, clientAddr: who.clientAddr });
      let ended = false;
      const me = live.attach({
        user: who.user, mode,
        write: (d) => ch.write(d),
        notice: (text) => ch.stderr.write(`\r\n[postern] ${escapeControl(text)}\r\n`),
        close: (reason) => {
          ended = true;
          try {
            ch.stderr.write(`\r\n[postern] ${escapeControl(reason)}\r\n`);
            ch.exit(0);
            ch.end();
          } catch { /* the joiner is gone */ }
        },
      });
      log.info({ user: who.user, session: id, mode }, 'joined a live session');
      ch.on('error', (err: Error) => log.debug({ err, session: id }, 'join channel error'));
      ch.on('data', (d: Buffer) => me.input(d));
      ch.on('close', () => { if (!ended) me.leave(); });
      ch.on('end', () => { if (!ended) { me.leave(); ch.exit(0); ch.end(); } });
      if (gone) me.leave();
    } catch (err) {
      fail((err as Error).message);
    }
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: Error) => reject(listenError(err, opts.addr, '--ssh-addr')));
    server.listen(opts.addr.port, opts.addr.host, () => { server.removeAllListeners('error'); resolve(); });
  });
  server.on('error', (err: Error) => opts.log.error({ err }, 'ssh listener error'));
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : opts.addr.port,
    connections: () => open.size,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const c of open) c.end();
      });
    },
  };
}

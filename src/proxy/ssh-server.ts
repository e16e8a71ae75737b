/**
 * The proxy's SSH listener (--ssh-addr, default 3023). It accepts only user certificates
 * of the cluster's user CA, asks auth before every dial, and pipes bytes between the
 * client and the node's sshd: the `proxy:HOST:PORT` subsystem (what `postern proxy ssh`
 * asks for) and `direct-tcpip` channels (what OpenSSH's `ssh -J` opens). It never reads
 * the inner SSH session, which runs end to end between the client and the node.
 */
import ssh2 from 'ssh2';
import type { AuthContext, Connection, ServerChannel, TcpipRequestInfo } from 'ssh2';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { lookup } from 'node:dns/promises';
import type { AuthClient, AccessRequest } from '../auth/auth-client.ts';
import type { Logger } from '../core/logger.ts';
import type { Clock } from '../core/clock.ts';
import { encodePrivateKeyOpenSSH, parseAuthorizedKey } from '../ssh/keys.ts';
import type { SshKeyPair } from '../ssh/keys.ts';
import { parseCertificate, verifyCertificate } from '../ssh/certs.ts';
import { isCertAlgo, verifyCertAuthSignature } from '../ssh/ssh2-certs.ts';
import type { SignedPublicKeyAuth } from '../ssh/ssh2-certs.ts';
import { listenError } from '../core/listen-error.ts';
import { PosternError } from '../core/errors.ts';
import { formatHostPort } from '../core/text.ts';

/** How the listener runs. */
export interface SshListenerOptions {
  auth: AuthClient;
  hostKey: SshKeyPair;
  addr: { host: string; port: number };
  log: Logger;
  clock: Clock;
  /** How long a dial to a node may take. */
  dialTimeoutMs?: number;
}

/** A running listener. */
export interface RunningSshListener {
  port: number;
  /** Connections open now (for tests and metrics). */
  connections(): number;
  close(): Promise<void>;
}

/** Who a connection authenticated as. */
interface Caller {
  user: string;
  principals: string[];
  login?: string;
  clientAddr: string;
}

const CA_CACHE_MS = 60_000;
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
  let caCache: { wires: Buffer[]; at: number } | undefined;
  const userCaWires = async (): Promise<Buffer[]> => {
    const now = Date.now();
    if (caCache && now - caCache.at < CA_CACHE_MS) return caCache.wires;
    const info = await opts.auth.ping();
    caCache = { wires: info.userCaKeys.map((k) => parseAuthorizedKey(k).wire), at: now };
    return caCache.wires;
  };
  await userCaWires();
  const dialTimeout = opts.dialTimeoutMs ?? 10_000;
  const open = new Set<Connection>();

  const server = new ssh2.Server({
    hostKeys: [encodePrivateKeyOpenSSH(opts.hostKey)],
    ident: 'Postern',
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
        if (!isCertAlgo(ctx.key.algo)) {
          log.info({ user: ctx.username, algo: ctx.key.algo }, 'refused a plain key: only certificates of this cluster are accepted');
          return ctx.reject(['publickey']);
        }
        try {
          const cert = parseCertificate(ctx.key.data);
          verifyCertificate(cert, { caPublicKeys: await userCaWires(), type: 'user', now: opts.clock.now() });
          if (ctx.username !== cert.keyId && !cert.principals.includes(ctx.username)) {
            throw new PosternError('ERR_POSTERN_CERT_PRINCIPAL', `user name "${ctx.username}" is neither the certificate's user nor one of its logins`);
          }
          if (!ctx.signature) return ctx.accept();
          if (!verifyCertAuthSignature(ctx as unknown as SignedPublicKeyAuth)) throw new PosternError('ERR_POSTERN_BAD_SIGNATURE', 'bad signature');
          caller = {
            user: cert.keyId, principals: cert.principals, clientAddr,
            ...(cert.principals.includes(ctx.username) ? { login: ctx.username } : {}),
          };
          ctx.accept();
        } catch (err) {
          log.info({ user: ctx.username, reason: (err as Error).message }, 'refused a certificate');
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
        session.on('exec', (acc) => refuseShell(acc));
        session.on('subsystem', (acc, rej, info) => {
          const target = parseProxySubsystem(info.name);
          if (!target) { rej?.(); return; }
          const ch = acc();
          void route(who, target.host, target.port, 'subsystem', log).then(
            (sock) => pipe(ch, sock),
            (err: Error) => {
              ch.stderr.write(`${err.message}\n`);
              ch.exit(255);
              ch.end();
            },
          );
        });
      });
      client.on('tcpip', (accept, reject, info: TcpipRequestInfo) => {
        const rej = reject as unknown as (code?: number, desc?: string) => void;
        void route(who, info.destIP, info.destPort, 'direct-tcpip', log).then(
          (sock) => {
            const ch = accept();
            if (!ch) { sock.destroy(); return; }
            pipe(ch, sock);
          },
          (err: PosternError) => rej(err.code === 'ERR_POSTERN_ACCESS_DENIED' || err.status === 403 || err.status === 404 ? ADMINISTRATIVELY_PROHIBITED : CONNECT_FAILED, err.message),
        );
      });
    });
  });

  /** Asks auth, then dials; every refusal happens before any dial. */
  const route = async (who: Caller, target: string, port: number, via: AccessRequest['via'], log: Logger): Promise<Socket> => {
    const req: AccessRequest = { user: who.user, principals: who.principals, target, port, clientAddr: who.clientAddr, via, ...(who.login ? { login: who.login } : {}) };
    let decision = await opts.auth.authorizeSsh(req);
    if (decision.kind === 'resolve') {
      const addrs = await lookup(target, { all: true }).catch(() => []);
      if (addrs.length === 0) throw new PosternError('ERR_POSTERN_UNKNOWN_HOST', `cannot resolve host "${target}"`, { status: 404 });
      decision = await opts.auth.authorizeSsh({ ...req, resolved: addrs.map((a) => a.address) });
      if (decision.kind === 'resolve') throw new PosternError('ERR_POSTERN_ACCESS_DENIED', `access to "${target}" denied`, { status: 403 });
    }
    const { host, port: dialPort, node } = decision;
    const name = node ? `node "${node.name}"` : `host "${target}"`;
    const sock = await dial(host, dialPort, dialTimeout).catch((err: Error & { code?: string }) => {
      const why = err.code === 'ECONNREFUSED' ? 'connection refused' : err.code === 'ETIMEDOUT' ? `no answer within ${dialTimeout / 1000}s` : err.message;
      throw new PosternError('ERR_POSTERN_NODE_UNREACHABLE', `cannot reach ${name} at ${formatHostPort(host, dialPort)}: ${why}`, { status: 502 });
    });
    log.info({ user: who.user, login: who.login, target, node: node?.name, via }, 'proxying to node');
    void opts.auth.emitAudit({ type: 'session.proxy', user: who.user, addr: who.clientAddr, success: true, target, node: node?.name, login: who.login, via })
      .catch((err: unknown) => log.warn({ err }, 'could not audit the proxied connection'));
    return sock;
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

/** Dials a node with TCP_NODELAY and a timeout. */
function dial(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host, port, noDelay: true });
    const timer = setTimeout(() => { sock.destroy(); reject(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })); }, timeoutMs);
    sock.once('connect', () => { clearTimeout(timer); sock.removeAllListeners('error'); resolve(sock); });
    sock.once('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

/** Pipes both ways with backpressure; when either side ends, both are closed. */
function pipe(ch: ServerChannel, sock: Socket): void {
  sock.setNoDelay(true);
  ch.pipe(sock);
  sock.pipe(ch);
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    sock.destroy();
    try { ch.end(); } catch { /* already closed */ }
    ch.close?.();
  };
  sock.on('error', close);
  sock.on('close', close);
  ch.on('error', close);
  ch.on('close', close);
}

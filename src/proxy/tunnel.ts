/**
 * The TLS tunnel on the web port: what `postern proxy ssh` uses by default to carry the
 * node's SSH stream. A TLS connection that negotiates the ALPN protocol
 * `postern-tunnel/1` (as Teleport routes by ALPN on its one port) is taken away from the
 * HTTP server; everything else (browsers, the CLI's API calls) goes on to HTTP as before.
 * Why: through the SSH listener, the node's own SSH runs inside a second SSH connection
 * whose packets ssh2 frames in JavaScript; inside TLS the second layer costs only Node's
 * native record encryption, which halves the proxy's CPU per byte (docs/benchmarks.md).
 *
 * The conversation, after the TLS handshake (client first, one line each, JSON):
 *
 *   C: {"v":1,"path":"/tunnel?target=web1&port=22&login=alice","authorization":"Postern-Cert cert=…"}
 *   S: {"ok":true}                                   then raw bytes both ways
 *   S: {"error":{"code":…,"message":…,"hint":…}}     then close
 *   S: {"fallback":"ssh","reason":…}                 then close: use the SSH listener instead
 *
 * The authorization is the signed-request header of the web API (cert-auth.ts) over method
 * CONNECT and that path: the user's certificate, a fresh signature, a nonce seen once. The
 * login must be one of the certificate's principals; auth decides the rest (authorizeSsh),
 * before any dial. When the cluster records sessions at the proxy, the tunnel never carries
 * a session: it answers `fallback`, and the client goes through the SSH listener, which
 * records (checked on every connection against auth's setting, cached at most 5 s).
 */
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { TunnelAuth } from '../api/proxy-auth.ts';
import type { Logger } from '../core/logger.ts';
import { AccessDeniedError, ValidationError } from '../core/errors.ts';
import { certPermits, notPermittedMessage } from '../ssh/cert-options.ts';
import { loginNotAllowedError } from '../api/refusals.ts';
import { errorToBody } from '../api/errors.ts';
import type { CertAuthenticator } from './cert-auth.ts';
import { dialNode, DEFAULT_DIAL_TIMEOUT_MS } from './node-dialer.ts';
import { readLine } from '../core/line-reader.ts';
import { pipeBoth } from '../core/pipe.ts';
import { ClusterInfoSource, accountOf } from './cluster-info.ts';

/** The ALPN protocol name of the tunnel. */
export const TUNNEL_ALPN = 'postern-tunnel/1';

/** What the tunnel needs. */
export interface TunnelOptions {
  auth: TunnelAuth;
  certAuth: Pick<CertAuthenticator, 'authenticate'>;
  log: Logger;
  /** The proxy's shared cluster facts (session_recording); one of its own when not given. */
  cluster?: ClusterInfoSource;
  dialTimeoutMs?: number;
  /** How long the client may take to send its request line (10 s). */
  requestTimeoutMs?: number;
}

const MAX_REQUEST = 16 * 1024;

/**
 * Routes connections of an HTTPS server by ALPN: the tunnel's to the tunnel, the rest to
 * the server's own handler. The server must list TUNNEL_ALPN in its ALPNProtocols.
 */
export function installTunnel(server: TlsServer, opts: TunnelOptions): void {
  const http = server.listeners('secureConnection') as Array<(s: TLSSocket) => void>;
  server.removeAllListeners('secureConnection');
  const cluster = opts.cluster ?? new ClusterInfoSource(opts.auth);
  const recording = async (): Promise<'off' | 'proxy'> => (await cluster.get()).sessionRecording;
  server.on('secureConnection', (sock: TLSSocket) => {
    if (sock.alpnProtocol === TUNNEL_ALPN) {
      void serveTunnel(sock, opts, recording, cluster);
      return;
    }
    for (const l of http) l.call(server, sock);
  });
}

/** Reads the request line; a malformed or missing one is a ValidationError (400). */
async function readRequestLine(sock: TLSSocket, timeoutMs: number): Promise<{ line: string; rest: Buffer }> {
  try {
    return await readLine(sock, { timeoutMs, maxBytes: MAX_REQUEST, what: 'tunnel request' });
  } catch (err) {
    throw new ValidationError((err as Error).message);
  }
}

/** Checks the request line's shape; returns what it asks for. */
export function parseTunnelRequest(line: string): { path: string; authorization: string; target: string; port: number; login: string } {
  let req: unknown;
  try { req = JSON.parse(line); } catch { throw new ValidationError('the tunnel request is not JSON'); }
  const r = req as { v?: unknown; path?: unknown; authorization?: unknown };
  if (typeof r !== 'object' || r === null || r.v !== 1) throw new ValidationError('unsupported tunnel request version', { hint: 'Use the same Postern version on the client and the proxy' });
  if (typeof r.path !== 'string' || typeof r.authorization !== 'string') throw new ValidationError('the tunnel request needs "path" and "authorization"');
  const url = new URL(r.path, 'https://tunnel.invalid');
  const target = url.searchParams.get('target') ?? '';
  const port = Number(url.searchParams.get('port'));
  const login = url.searchParams.get('login') ?? '';
  if (url.pathname !== '/tunnel') throw new ValidationError(`unknown tunnel path "${url.pathname}"`);
  if (!target || target.length > 255) throw new ValidationError('the tunnel request needs a target of 1 to 255 characters');
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ValidationError('the tunnel request needs a port from 1 to 65535');
  if (!login || login.length > 64) throw new ValidationError('the tunnel request needs a login');
  return { path: r.path, authorization: r.authorization, target, port, login };
}

async function serveTunnel(sock: TLSSocket, opts: TunnelOptions, recording: () => Promise<'off' | 'proxy'>, cluster: ClusterInfoSource): Promise<void> {
  const clientAddr = sock.remoteAddress ?? 'unknown';
  const log = opts.log.child({ clientAddr, via: 'tunnel' });
  sock.setNoDelay(true);
  sock.on('error', (err: Error) => log.debug({ err }, 'tunnel client connection error'));
  const answer = (body: unknown): void => { sock.end(JSON.stringify(body) + '\n'); };
  let node: Socket | undefined;
  try {
    const { line, rest } = await readRequestLine(sock, opts.requestTimeoutMs ?? 10_000);
    const req = parseTunnelRequest(line);
    const caller = await opts.certAuth.authenticate('CONNECT', req.path, req.authorization, clientAddr);
    if (!caller.principals.includes(req.login)) throw loginNotAllowedError(req.login, caller.principals);
    // The tunnel forwards a port, as ssh -J's direct-tcpip does: the certificate must allow it.
    if (!certPermits(caller.certificate, 'permit-port-forwarding')) {
      throw new AccessDeniedError(notPermittedMessage('permit-port-forwarding', `connecting to ${req.target}`));
    }
    if (await recording() === 'proxy') {
      answer({ fallback: 'ssh', reason: 'this cluster records sessions at the proxy' });
      return;
    }
    const dialled = await dialNode(opts.auth, { user: caller.user, principals: caller.principals, login: req.login, clientAddr }, req.target, req.port, 'tunnel', log, opts.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS);
    node = dialled.sock;
    sock.write(JSON.stringify({ ok: true }) + '\n');
    if (rest.length > 0) node.write(rest);
    pipeBoth(sock, node);
    // A lock or a reset that comes to cover it cuts it (live-conns.ts); the tunnel has no side channel for the message.
    const nodeSock = node;
    const done = cluster.live.add({
      user: caller.user, account: accountOf(caller.certificate), login: req.login, node: dialled.decision.node?.name ?? req.target.toLowerCase(), via: 'tunnel', clientAddr,
      close: () => { nodeSock.destroy(); sock.destroy(); },
    });
    sock.once('close', done);
    node.once('close', done);
  } catch (err) {
    const { status, body } = errorToBody(err);
    if (status >= 500 && status !== 502) log.error({ err }, 'tunnel failed');
    else log.info({ reason: (err as Error).message }, 'tunnel refused');
    node?.destroy();
    if (!sock.destroyed) answer(body);
  }
}

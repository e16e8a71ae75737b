/**
 * The proxy's web server on --web-addr: HTTPS (the proxy terminates TLS), the web API the
 * CLI and the web UI use, and the UI itself. It holds no secret of the cluster: every
 * credential goes straight to auth through the AuthClient.
 */
import Fastify from 'fastify';
import type { FastifyInstance, FastifyError } from 'fastify';
import type { WebServerAuth } from '../api/proxy-auth.ts';
import type { PingResponse, SshLoginRequest, SshLoginResponse, AcceptInviteRequest } from '../api/types.ts';
import { sshLoginSchema, acceptInviteSchema, inviteParamsSchema } from '../api/schemas.ts';
import { errorToBody, retryAfterHeader } from '../api/errors.ts';
import type { Logger } from '../core/logger.ts';
import { VERSION } from '../core/version.ts';
import { CertAuthenticator } from './cert-auth.ts';
import { ClusterInfoSource } from './cluster-info.ts';
import { installTunnel, TUNNEL_ALPN } from './tunnel.ts';
import fastifyWebsocket from '@fastify/websocket';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';
import type { SessionHub } from './session-hub.ts';
import { WebAuth } from './web-auth.ts';
import { registerWebRoutes } from './web-routes.ts';
import { registerWebTerminal } from './web-terminal.ts';
import { findWebDir, registerUi } from './web-ui.ts';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { DEFAULT_WEB_LIMITS, limitWebConnections } from './conn-limits.ts';
import type { WebConnLimiter, WebConnLimits } from './conn-limits.ts';

/** What the web server needs to know about its proxy. */
export interface WebServerOptions {
  auth: WebServerAuth;
  tls: { certPem: string; keyPem: string };
  webPublicAddr: string;
  sshPublicAddr: string;
  /** The proxy's SSH host key, an authorized_keys line, for clients' known_hosts. */
  sshHostKey: string;
  log: Logger;
  /** The proxy's live sessions (web terminals, join). */
  hub: SessionHub;
  clock?: Clock;
  /** The proxy's shared cluster facts; one of the server's own when not given. */
  cluster?: ClusterInfoSource;
  /** Where the built UI is (default: dist/web found from here, or $POSTERN_WEB_DIR). */
  webDir?: string;
  /** The per-source connection cap and header timeout (DEFAULT_WEB_LIMITS where not given). */
  limits?: Partial<WebConnLimits>;
}

/** Builds the web server (not yet listening). */
export function buildWebServer(opts: WebServerOptions): FastifyInstance {
  const cluster = opts.cluster ?? new ClusterInfoSource(opts.auth);
  const limits: WebConnLimits = { ...DEFAULT_WEB_LIMITS, ...opts.limits };
  const app = Fastify({
    // ALPN: `postern-tunnel/1` connections are the TLS tunnel of `postern proxy ssh` (tunnel.ts).
    https: {
      cert: opts.tls.certPem, key: opts.tls.keyPem, minVersion: 'TLSv1.2', ALPNProtocols: [TUNNEL_ALPN, 'http/1.1'],
      handshakeTimeout: limits.headerTimeoutMs,
    },
    logger: false,
    bodyLimit: 1 << 20,
    trustProxy: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });

  const tlsServer = app.server as unknown as TlsServer;
  const limiter = limitConnections(app, tlsServer, limits);

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err.validation) {
      void reply.code(400).send({ error: { code: 'ERR_POSTERN_INVALID', message: `invalid request: ${err.message.replace(/^body\/?/, '')}` } });
      return;
    }
    if (err.statusCode && err.statusCode < 500 && !(err as { hint?: string }).hint && !('exitCode' in err)) {
      void reply.code(err.statusCode).send({ error: { code: 'ERR_POSTERN_BAD_REQUEST', message: err.message.toLowerCase() } });
      return;
    }
    const { status, body } = errorToBody(err);
    if (status >= 500) opts.log.error({ err }, 'web request failed');
    const retryAfter = retryAfterHeader(err);
    if (retryAfter) void reply.header('retry-after', retryAfter);
    void reply.code(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: { code: 'ERR_POSTERN_NOT_FOUND', message: `no such endpoint ${req.method} ${req.url.split('?')[0]}` } });
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('strict-transport-security', 'max-age=31536000');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    return payload;
  });

  app.get('/webapi/ping', async (): Promise<PingResponse> => {
    // Always fresh (a changed second factor shows at once); it refreshes the shared facts too.
    const { info } = await cluster.get(0);
    return {
      clusterName: info.clusterName,
      secondFactor: info.secondFactor,
      serverVersion: VERSION,
      proxy: { sshPublicAddr: opts.sshPublicAddr, webPublicAddr: opts.webPublicAddr },
    };
  });

  for (const type of ['user', 'host'] as const) {
    app.get(`/webapi/ca/${type}`, async (_req, reply) => {
      const keys = await opts.auth.caKeys({ type });
      void reply.type('text/plain; charset=utf-8').send(keys.join('\n') + '\n');
    });
  }

  app.post<{ Body: SshLoginRequest }>('/webapi/ssh/certs', { schema: { body: sshLoginSchema } }, async (req): Promise<SshLoginResponse> => {
    const r = await opts.auth.loginSsh({ ...req.body, clientAddr: req.ip });
    return { ...r, proxySshHostKey: opts.sshHostKey, proxySshAddr: opts.sshPublicAddr };
  });

  app.get<{ Params: { token: string } }>('/webapi/invites/:token', { schema: { params: inviteParamsSchema } }, async (req, reply) => {
    void reply.header('cache-control', 'no-store');
    return opts.auth.getInvite({ token: req.params.token });
  });

  app.post<{ Params: { token: string }; Body: AcceptInviteRequest }>(
    '/webapi/invites/:token', { schema: { params: inviteParamsSchema, body: acceptInviteSchema } },
    async (req) => opts.auth.acceptInvite({ ...req.body, token: req.params.token, clientAddr: req.ip }),
  );

  const certAuth = new CertAuthenticator({ auth: opts.auth, cluster });
  installTunnel(tlsServer, { auth: opts.auth, certAuth, log: opts.log, cluster });
  gateTunnel(tlsServer, limiter);
  const webAuth = new WebAuth(opts.auth, certAuth);
  registerWebRoutes(app, { auth: opts.auth, webAuth, log: opts.log });
  void app.register(fastifyWebsocket, { options: { maxPayload: 1 << 20 } });
  void app.register(async (scoped) => {
    registerWebTerminal(scoped, { auth: opts.auth, hub: opts.hub, webAuth, log: opts.log, clock: opts.clock ?? systemClock, cluster });
  });
  registerUi(app, opts.webDir ?? findWebDir());
  return app;
}

/**
 * The per-source cap and header timeout of conn-limits.ts on the web port: an HTTP request
 * (or websocket upgrade) on a connection over the cap gets a 429 and the connection closes.
 * Before any route, so that it holds for all.
 */
function limitConnections(app: FastifyInstance, server: TlsServer, limits: WebConnLimits): WebConnLimiter {
  const limiter = limitWebConnections(server, limits);
  app.addHook('onRequest', async (req, reply) => {
    limiter.started(req.raw.socket);
    const refusal = limiter.refusal(req.raw.socket);
    if (refusal) {
      void reply.header('connection', 'close');
      throw refusal;
    }
  });
  return limiter;
}

/** A tunnel connection (tunnel.ts) over its source's cap gets the tunnel's error line and is closed. */
function gateTunnel(server: TlsServer, limiter: WebConnLimiter): void {
  const routed = server.listeners('secureConnection') as Array<(s: TLSSocket) => void>;
  server.removeAllListeners('secureConnection');
  server.on('secureConnection', (s: TLSSocket) => {
    if (s.alpnProtocol === TUNNEL_ALPN) {
      limiter.started(s); // the tunnel has its own time limit for its request line
      const refusal = limiter.refusal(s);
      if (refusal) {
        s.on('error', () => {});
        s.end(`${JSON.stringify(errorToBody(refusal).body)}\n`);
        return;
      }
    }
    for (const l of routed) l.call(server, s);
  });
}

/**
 * The Auth API: auth's calls over HTTPS with mutual TLS on --auth-addr (default
 * 127.0.0.1:3025). The caller's identity comes from its client certificate, issued by the
 * cluster's TLS CA; only `POST /v1/join` works without one (it takes a join token).
 */
import { createServer } from 'node:https';
import type { Server, IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { AuthServer } from './auth-server.ts';
import type { Identity } from '../api/auth-types.ts';
import { errorToBody } from '../api/errors.ts';
import { AccessDeniedError, ValidationError, PosternError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { listenError } from '../core/listen-error.ts';

// A recording chunk (up to 1 MiB of event lines) can double when its escapes are escaped again.
const MAX_BODY = 4 << 20;

/** Options of the Auth API listener. */
export interface AuthApiOptions {
  auth: AuthServer;
  host: string;
  port: number;
  /** The server's own TLS identity, from the cluster TLS CA with role "auth". */
  certPem: string;
  keyPem: string;
  log: Logger;
}

/** Reads the identity of a verified client certificate, or undefined. */
function identityOf(req: IncomingMessage): Identity | undefined {
  const socket = req.socket as TLSSocket;
  if (!socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert?.raw) return undefined;
  const x = new X509Certificate(cert.raw);
  const fields = Object.fromEntries(x.subject.split('\n').map((l) => l.split('=') as [string, string]));
  if (fields.O === 'admin' || fields.O === 'proxy') return { role: fields.O, name: fields.CN ?? '', serial: x.serialNumber };
  return undefined;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new ValidationError('request body is too large');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ValidationError('request body is not valid JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body ?? null);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

/** Starts the Auth API; resolves once it listens. */
export async function startAuthApi(opts: AuthApiOptions): Promise<Server> {
  const ca = await opts.auth.tlsCa();
  const server = createServer(
    { cert: `${opts.certPem.trim()}\n${ca.certPem.trim()}\n`, key: opts.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' },
    (req, res) => {
      void (async () => {
        const addr = req.socket.remoteAddress ?? '';
        try {
          if (req.method !== 'POST') throw new PosternError('ERR_POSTERN_METHOD', 'only POST is allowed', { status: 405 });
          const url = new URL(req.url ?? '/', 'https://auth');
          const body = await readJson(req);
          if (url.pathname === '/v1/join') {
            const b = body as { token: string; name: string; publicKeyPem: string };
            send(res, 200, await opts.auth.joinProxy(b, addr));
            return;
          }
          const m = /^\/v1\/call\/([A-Za-z]+)$/.exec(url.pathname);
          if (!m) throw new PosternError('ERR_POSTERN_NOT_FOUND', `no such endpoint ${url.pathname}`, { status: 404 });
          const identity = identityOf(req);
          if (!identity) throw new AccessDeniedError('a client certificate from this cluster is required', { status: 401 });
          const arg = (body as { arg?: unknown }).arg;
          send(res, 200, { result: (await opts.auth.call(identity, m[1], arg)) ?? null });
        } catch (err) {
          const { status, body } = errorToBody(err);
          if (status >= 500) opts.log.error({ err, url: req.url }, 'auth api call failed');
          send(res, status, body);
        }
      })();
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenError(err, { host: opts.host, port: opts.port }, '--auth-addr')));
    server.listen(opts.port, opts.host, () => { server.removeAllListeners('error'); resolve(); });
  });
  return server;
}

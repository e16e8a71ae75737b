/**
 * RemoteAuthClient: the AuthClient over the Auth API (HTTPS, mutual TLS). The server must
 * present a certificate from the cluster's TLS CA with the role "auth"; we present ours.
 * `joinCluster()` is the one call made before we have an identity: it trusts auth by pin.
 * A proxy may name several auth servers on one database; the client fails over between
 * them (docs/ha.md).
 */
import { Agent, request } from 'undici';
import type { PeerCertificate } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { AuthCallName, AuthClient } from '../api/auth-client.ts';
import { AUTH_CALLS } from '../api/auth-client.ts';
import { errorFromBody } from '../api/errors.ts';
import { ConnectionError, TlsTrustError } from '../core/errors.ts';
import { tlsConnector } from '../core/tls-connect.ts';
import { formatHostPort } from '../core/text.ts';

/** A client identity for the Auth API: certificate, key and the cluster's TLS CA, PEM. */
export interface TlsIdentity {
  certPem: string;
  keyPem: string;
  caPem: string;
}

function requireAuthRole(_host: string, cert: PeerCertificate): Error | undefined {
  if (!cert?.raw) return new TlsTrustError('the auth server sent no certificate');
  const subject = new X509Certificate(cert.raw).subject;
  return /(^|\n)O=auth(\n|$)/.test(subject) ? undefined : new TlsTrustError('the server at the auth address is not this cluster\'s auth service');
}

/** A failure of the call itself: the request may or may not have reached the server. */
class CallConnectionError extends ConnectionError {
  /** True when the request never left this host (refused, unreachable, connect timeout). */
  readonly notSent: boolean;
  constructor(message: string, notSent: boolean, options: ConstructorParameters<typeof ConnectionError>[1]) {
    super(message, options);
    this.notSent = notSent;
  }
}

/** Network error codes that mean no byte of the request reached the server. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EADDRNOTAVAIL']);

function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    if (typeof e.code === 'string') codes.push(e.code);
  }
  return codes;
}

async function post(dispatcher: Agent, origin: string, path: string, body: unknown): Promise<unknown> {
  let res;
  try {
    res = await request(`${origin}${path}`, {
      method: 'POST', dispatcher, body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, headersTimeout: 30_000, bodyTimeout: 60_000,
    });
  } catch (err) {
    if (err instanceof TlsTrustError) throw err;
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof TlsTrustError) throw cause;
    throw new CallConnectionError(`cannot reach the auth service at ${origin}: ${(err as Error).message}`, errorCodes(err).some((c) => NOT_SENT_CODES.has(c)), {
      cause: err, hint: 'Check that `postern serve` with the auth role runs there and that --auth-server is right',
    });
  }
  const text = await res.body.text();
  let json: unknown;
  try { json = text ? JSON.parse(text) : {}; } catch { json = undefined; }
  if (res.statusCode !== 200) throw errorFromBody(res.statusCode, json, 'the auth service');
  return json;
}

/**
 * Calls that may be sent again after a connection broke mid-way: they read, or write
 * the same thing again (a heartbeat, a session report, a chunk by its sequence number,
 * a certificate for the caller's own key). Every other call (a login that consumes a
 * one-time code, an audit event, a new user…) is retried on another auth server only when
 * it never reached the first one. (authorizeSsh writes an audit event when it refuses: sent
 * again after a server died mid-call, one refusal may be logged twice, never a grant.)
 */
export const IDEMPOTENT_CALLS: ReadonlySet<AuthCallName> = new Set<AuthCallName>([
  'ping', 'getInvite', 'caKeys', 'signHostCert', 'signTlsCert', 'heartbeatProxy', 'listUsers', 'getSettings', 'searchAudit',
  'listNodes', 'listRoles', 'authorizeSsh', 'appendRecording', 'finishRecording', 'listRecordings', 'getRecording',
  'readRecording', 'getWebSession', 'webSessionAgent', 'upsertActiveSession', 'endActiveSession', 'heartbeatSessions', 'listActiveSessions', 'authorizeJoin',
]);

/** How often an auth server marked down is probed again. */
export const REPROBE_INTERVAL_MS = 1_000;
/** How long a connection to an auth server may take to open. */
export const CONNECT_TIMEOUT_MS = 3_000;

/** One auth server of the list, with its connection pool and health. */
interface Server {
  origin: string;
  dispatcher: Agent;
  down: boolean;
}

/** Options of {@link remoteAuthClient}. */
export interface RemoteClientOptions {
  /** Told when an auth server is marked down or up again (the proxy logs it). */
  onHealth?: (origin: string, up: boolean, err?: Error) => void;
}

/**
 * Makes an AuthClient that talks to auth at host:port, or to several auth servers on one
 * database, with a client identity. With several, calls go round-robin over the servers
 * that are up; a call that fails to connect to one is sent to the next (see
 * {@link IDEMPOTENT_CALLS} for which may be sent again); a server that failed is marked
 * down, skipped while another is up, and probed in the background every second until it
 * answers again.
 */
export function remoteAuthClient(
  addrs: { host: string; port: number } | ReadonlyArray<{ host: string; port: number }>, identity: TlsIdentity, options: RemoteClientOptions = {},
): AuthClient {
  type Addr = { host: string; port: number };
  const list: readonly Addr[] = 'host' in addrs ? [addrs as Addr] : (addrs as readonly Addr[]);
  if (list.length === 0) throw new ConnectionError('no auth server address');
  const servers: Server[] = list.map((addr) => ({
    origin: `https://${formatHostPort(addr.host, addr.port)}`,
    dispatcher: new Agent({
      connect: { ca: identity.caPem, cert: identity.certPem, key: identity.keyPem, checkServerIdentity: requireAuthRole, minVersion: 'TLSv1.3', timeout: CONNECT_TIMEOUT_MS },
      keepAliveTimeout: 30_000,
    }),
    down: false,
  }));
  let next = 0;
  let probe: NodeJS.Timeout | undefined;
  let closed = false;

  const markUp = (s: Server): void => {
    if (!s.down) return;
    s.down = false;
    options.onHealth?.(s.origin, true);
  };
  const markDown = (s: Server, err: Error): void => {
    if (s.down || servers.length === 1) return;
    s.down = true;
    options.onHealth?.(s.origin, false, err);
    probe ??= setInterval(() => void reprobe(), REPROBE_INTERVAL_MS).unref();
  };
  const reprobe = async (): Promise<void> => {
    const down = servers.filter((s) => s.down);
    if (down.length === 0 || closed) {
      clearInterval(probe);
      probe = undefined;
      return;
    }
    await Promise.all(down.map(async (s) => {
      try {
        await post(s.dispatcher, s.origin, '/v1/call/ping', { arg: {} });
        markUp(s);
      } catch (err) {
        // An answer that is an error (503 while its database is away) still means the server is back.
        if (!(err instanceof ConnectionError) && !(err instanceof TlsTrustError)) markUp(s);
      }
    }));
  };
  /** The servers in the order to try: the live ones from the round-robin point, then the ones marked down. */
  const order = (): Server[] => {
    const start = next++ % servers.length;
    const rotated = [...servers.slice(start), ...servers.slice(0, start)];
    return [...rotated.filter((s) => !s.down), ...rotated.filter((s) => s.down)];
  };
  const call = async (method: AuthCallName, arg: unknown): Promise<unknown> => {
    let lastErr: unknown;
    for (const s of order()) {
      try {
        const res = (await post(s.dispatcher, s.origin, `/v1/call/${method}`, { arg: arg ?? {} })) as { result: unknown };
        markUp(s);
        return res.result;
      } catch (err) {
        // A server whose certificate we cannot trust got no request: try the next (and say why if none works).
        if (err instanceof TlsTrustError && servers.length > 1) {
          markDown(s, err);
          lastErr = err;
          continue;
        }
        if (!(err instanceof CallConnectionError)) throw err;
        markDown(s, err);
        lastErr = err;
        // Sent, perhaps handled, and not safe twice: the caller decides (a user logs in again).
        if (!err.notSent && !IDEMPOTENT_CALLS.has(method)) throw err;
      }
    }
    throw lastErr;
  };
  const client: Record<string, unknown> = {
    close: async () => {
      closed = true;
      clearInterval(probe);
      await Promise.all(servers.map((s) => s.dispatcher.close()));
    },
  };
  for (const method of Object.keys(AUTH_CALLS) as AuthCallName[]) client[method] = (arg?: unknown) => call(method, arg);
  return client as unknown as AuthClient;
}

/** Joins a cluster with a token, trusting auth by the TLS CA pin; returns the new identity's cert. */
export async function joinCluster(
  addr: { host: string; port: number }, pin: string, req: { token: string; name: string; publicKeyPem: string },
): Promise<{ certPem: string; caPem: string; clusterName: string }> {
  const origin = `https://${formatHostPort(addr.host, addr.port)}`;
  const dispatcher = new Agent({
    connect: tlsConnector({
      servername: false, pin, minVersion: 'TLSv1.3',
      // The role check stands in for the host name: auth may sit behind any name.
      verifyPeer: (socket) => requireAuthRole(addr.host, socket.getPeerCertificate()),
    }),
  });
  try {
    return (await post(dispatcher, origin, '/v1/join', req)) as { certPem: string; caPem: string; clusterName: string };
  } finally {
    await dispatcher.close();
  }
}

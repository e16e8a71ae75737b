/**
 * The client of the proxy's web API (HTTPS, undici). The proxy's certificate must verify:
 * against the system's CAs, against a pinned cluster CA (--ca-pin), or not at all only
 * when the user said --insecure.
 */
import { Agent, request } from 'undici';
import type {
  ActiveSession, NodeInfo, PingResponse, SshLoginRequest, SshLoginResponse, InviteInfo, AcceptInviteRequest, AcceptInviteResponse, RecordingMeta,
} from '../api/types.ts';
import { errorFromBody } from '../api/errors.ts';
import type { RequestSigner } from './request-signing.ts';
import { ConnectionError, PosternError, TlsTrustError } from '../core/errors.ts';
import { TLS_UNTRUSTED_CODES, tlsConnector } from '../core/tls-connect.ts';
import { formatHostPort } from '../core/text.ts';

/** A node as GET /webapi/nodes lists it. */
export type NodeListing = NodeInfo;

/** How to reach and trust a proxy. */
export interface WebClientOptions {
  host: string;
  port: number;
  caPin?: string;
  insecure?: boolean;
  timeoutMs?: number;
}

/** Calls the proxy's web API. */
export class WebClient {
  readonly origin: string;
  private readonly dispatcher: Agent;
  private readonly opts: WebClientOptions;

  constructor(opts: WebClientOptions) {
    this.opts = opts;
    this.origin = `https://${formatHostPort(opts.host, opts.port)}`;
    const pin = opts.caPin;
    this.dispatcher = pin
      ? new Agent({ connect: tlsConnector({ host: opts.host, pin, pinHostname: opts.host }) })
      : new Agent({ connect: { rejectUnauthorized: !opts.insecure } });
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown, signer?: RequestSigner, asText = false): Promise<T> {
    let res;
    try {
      res = await request(`${this.origin}${path}`, {
        method,
        dispatcher: this.dispatcher,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(signer ? { authorization: signer(method, path) } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: this.opts.timeoutMs ?? 30_000,
        bodyTimeout: this.opts.timeoutMs ?? 30_000,
      });
    } catch (err) {
      throw this.transportError(err);
    }
    const text = await res.body.text();
    let json: unknown;
    try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
    if (res.statusCode >= 400) throw errorFromBody(res.statusCode, json, `the proxy at ${this.origin}`);
    if (asText) return text as T;
    if (json === undefined && text) return text as T;
    return json as T;
  }

  private transportError(err: unknown): PosternError {
    const e = err as { code?: string; cause?: { code?: string; message?: string } };
    if (err instanceof TlsTrustError) return err;
    if (e.cause instanceof TlsTrustError) return e.cause;
    const code = e.code ?? e.cause?.code ?? '';
    if (TLS_UNTRUSTED_CODES.has(code)) {
      return new TlsTrustError(`cannot verify the proxy's TLS certificate at ${this.origin} (${code})`);
    }
    const msg = e.cause?.message ?? (err as Error).message;
    return new ConnectionError(`cannot reach the proxy at ${this.origin}: ${msg}`, {
      cause: err, hint: 'Check the address and port (--proxy HOST:PORT, default port 3080) and that the proxy is running',
    });
  }

  /** Cluster facts and the proxy's addresses. */
  ping(): Promise<PingResponse> { return this.call('GET', '/webapi/ping'); }
  /** Logs in with credentials and a public key; returns a certificate. */
  loginSsh(req: SshLoginRequest): Promise<SshLoginResponse> { return this.call('POST', '/webapi/ssh/certs', req); }
  /** Reads an invite. */
  getInvite(token: string): Promise<InviteInfo> { return this.call('GET', `/webapi/invites/${encodeURIComponent(token)}`); }
  /** Accepts an invite. */
  acceptInvite(token: string, req: AcceptInviteRequest): Promise<AcceptInviteResponse> { return this.call('POST', `/webapi/invites/${encodeURIComponent(token)}`, req); }
  /** A CA's public keys as authorized_keys text. */
  caKeys(type: 'user' | 'host'): Promise<string> { return this.call('GET', `/webapi/ca/${type}`); }
  /** The nodes the signed-in user may reach (GET /webapi/nodes), signed with the stored certificate's key. */
  listNodes(query: { labels?: Record<string, string>; search?: string }, signer: RequestSigner): Promise<NodeListing[]> {
    const params = new URLSearchParams();
    const labels = Object.entries(query.labels ?? {});
    if (labels.length) params.set('labels', labels.map(([k, v]) => `${k}=${v}`).join(','));
    if (query.search) params.set('search', query.search);
    const qs = params.toString();
    return this.call('GET', `/webapi/nodes${qs ? `?${qs}` : ''}`, undefined, signer);
  }
  /** The live sessions the signed-in user may see (GET /webapi/sessions). */
  listSessions(signer: RequestSigner): Promise<ActiveSession[]> {
    return this.call('GET', '/webapi/sessions', undefined, signer);
  }
  /** The recordings the signed-in user may see, newest first (GET /webapi/recordings). */
  listRecordings(signer: RequestSigner): Promise<RecordingMeta[]> {
    return this.call('GET', '/webapi/recordings', undefined, signer);
  }
  /** A recording as .cast text (asciicast v2), if the signed-in user may see it (GET /webapi/recordings/:id). */
  recordingCast(id: string, signer: RequestSigner): Promise<string> {
    return this.call('GET', `/webapi/recordings/${encodeURIComponent(id)}`, undefined, signer, true);
  }
  /** Closes the connections. */
  close(): Promise<void> { return this.dispatcher.close(); }
}

/**
 * The client's half of the TLS tunnel (src/proxy/tunnel.ts has the protocol): a TLS
 * connection to the proxy's web port with ALPN `postern-tunnel/1`, one signed request
 * line, one answer line, then the node's SSH stream. `postern proxy ssh` tries it first;
 * it resolves with the TLS socket carrying the node's stream, or with a
 * {@link TunnelFallback} (`{ fallback: true, reason }`), which means "use the SSH listener
 * instead": the proxy does not speak the tunnel (an older proxy, a TLS terminator in front
 * of it), its web port is not reachable, or the cluster records sessions at the proxy. Trust failures are never a reason to fall back:
 * the proxy's certificate is checked as for every web API call (pin or system CAs).
 */
import type { TLSSocket } from 'node:tls';
import type { Profile } from './profile.ts';
import type { SshKeyPair } from '../ssh/keys.ts';
import { signRequest } from './request-signing.ts';
import { errorFromBody } from '../api/errors.ts';
import { DEFAULT_WEB_PORT } from '../api/types.ts';
import { ConnectionError, TlsTrustError } from '../core/errors.ts';
import { readLine } from '../core/line-reader.ts';
import { isIpLike, openTls, TLS_UNTRUSTED_CODES } from '../core/tls-connect.ts';
import { parseHostPort } from '../core/text.ts';

/** The ALPN protocol name of the tunnel (the same as the proxy's TUNNEL_ALPN). */
export const TUNNEL_ALPN = 'postern-tunnel/1';

/** What the tunnel needs. */
export interface TunnelRequest {
  profile: Profile;
  keyPair: SshKeyPair;
  /** The certificate's wire blob. */
  certificate: Buffer;
  login: string;
  host: string;
  port: number;
  timeoutMs?: number;
  now?: () => Date;
}

/** Why the tunnel was not used (for --debug style messages). */
export interface TunnelFallback {
  fallback: true;
  reason: string;
}

/** Opens the tunnel; resolves with the socket carrying the node's stream, or a fallback. */
export async function openTunnel(req: TunnelRequest): Promise<TLSSocket | TunnelFallback> {
  const { host, port } = parseHostPort(req.profile.webProxyAddr, DEFAULT_WEB_PORT);
  const timeoutMs = req.timeoutMs ?? 15_000;
  const pin = req.profile.caPin;
  let sock: TLSSocket;
  try {
    sock = await openTls({
      host, port, pin, insecure: req.profile.insecure, pinHostname: isIpLike(host) ? undefined : host,
      ALPNProtocols: [TUNNEL_ALPN, 'http/1.1'], timeoutMs,
    });
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (err instanceof TlsTrustError) throw err;
    if (TLS_UNTRUSTED_CODES.has(code)) throw new TlsTrustError(`the proxy's certificate is not trusted: ${(err as Error).message}`, { cause: err, hint: 'Log in again with --ca-pin (the pin `postern serve` prints)' });
    return { fallback: true, reason: `the web port is not reachable: ${(err as Error).message}` };
  }
  sock.setNoDelay(true);
  if (sock.alpnProtocol !== TUNNEL_ALPN) {
    sock.destroy();
    return { fallback: true, reason: 'the proxy does not offer the tunnel' };
  }
  const path = `/tunnel?${new URLSearchParams({ target: req.host, port: String(req.port), login: req.login }).toString()}`;
  const authorization = signRequest({ keyPair: req.keyPair, certificate: req.certificate, method: 'CONNECT', pathAndQuery: path, ...(req.now ? { now: req.now() } : {}) });
  sock.write(JSON.stringify({ v: 1, path, authorization }) + '\n');
  const { line, rest } = await readLine(sock, { timeoutMs, maxBytes: 64 * 1024, what: 'answer of the proxy\'s tunnel' })
    .catch((err: Error) => { sock.destroy(); throw new ConnectionError(err.message, { cause: err }); });
  let answer: { ok?: boolean; fallback?: string; reason?: string; error?: unknown };
  try { answer = JSON.parse(line) as typeof answer; } catch { answer = {}; }
  if (answer.ok === true) {
    if (rest.length > 0) sock.unshift(rest);
    return sock;
  }
  sock.destroy();
  if (answer.fallback === 'ssh') return { fallback: true, reason: answer.reason ?? 'the proxy asked for the SSH listener' };
  throw errorFromBody(answer.error ? statusOf(answer.error) : 502, answer.error ? { error: answer.error } : undefined, `the proxy at ${req.profile.webProxyAddr}`);
}

function statusOf(error: unknown): number {
  const code = (error as { code?: string }).code ?? '';
  if (code === 'ERR_POSTERN_NODE_UNREACHABLE') return 502;
  if (code === 'ERR_POSTERN_REQUEST_AUTH') return 401;
  if (code === 'ERR_POSTERN_UNKNOWN_HOST' || code === 'ERR_POSTERN_NOT_FOUND') return 404;
  return 403;
}

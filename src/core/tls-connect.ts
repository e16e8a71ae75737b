/**
 * The one way Postern dials a TLS server it trusts by pin (or by the system's CAs, or not
 * at all with --insecure): the web API client, the TLS tunnel of `postern proxy ssh` and
 * a proxy joining auth all connect through here. A pinned peer is checked by
 * checkPinnedPeer (tls-verify.ts) once the handshake is done, before a byte is sent.
 */
import { connect as tlsConnect } from 'node:tls';
import type { SecureVersion, TLSSocket } from 'node:tls';
import { checkPinnedPeer } from './tls-verify.ts';

/** How to reach and trust one TLS server. */
export interface TlsConnectOptions {
  host: string;
  port: number;
  /** SNI name: by default `host` unless it is an IP address; false sends none. */
  servername?: string | false;
  /** `sha256:…` of a CA in the peer's chain: trust by pin instead of the system's CAs. */
  pin?: string;
  /** Without a pin, accept any certificate (the user said --insecure). */
  insecure?: boolean;
  /** With a pin, the name a certificate signed by the pinned CA must be for; undefined checks none. */
  pinHostname?: string;
  /** One more check of the peer after the pin (auth's role, say); an error refuses it. */
  verifyPeer?: (socket: TLSSocket) => Error | undefined;
  ALPNProtocols?: string[];
  minVersion?: SecureVersion;
}

/** The OpenSSL and Node codes of a certificate that does not verify (not a network failure). */
export const TLS_UNTRUSTED_CODES: ReadonlySet<string> = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED',
]);

/** True when a host is written as an IP address (no SNI for it). */
export function isIpLike(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

/**
 * Dials and checks the peer; `done` is called once: with the socket when the handshake
 * and every check passed, else with the error (the socket is then destroyed).
 */
export function connectTls(opts: TlsConnectOptions, done: (err: Error | null, socket: TLSSocket | null) => void): TLSSocket {
  const servername = opts.servername === false ? undefined : opts.servername ?? (isIpLike(opts.host) ? undefined : opts.host);
  const socket = tlsConnect({
    host: opts.host, port: opts.port,
    ...(servername === undefined ? {} : { servername }),
    rejectUnauthorized: !opts.pin && !opts.insecure,
    ...(opts.ALPNProtocols ? { ALPNProtocols: opts.ALPNProtocols } : {}),
    ...(opts.minVersion ? { minVersion: opts.minVersion } : {}),
  });
  let settled = false;
  const finish = (err: Error | null): void => {
    if (settled) return;
    settled = true;
    socket.off('error', onError);
    if (err) { socket.destroy(); done(err, null); } else done(null, socket);
  };
  const onError = (err: Error): void => finish(err);
  socket.once('secureConnect', () => {
    const err = (opts.pin ? checkPinnedPeer(socket, opts.pin, opts.pinHostname) : undefined) ?? opts.verifyPeer?.(socket);
    finish(err ?? null);
  });
  socket.once('error', onError);
  return socket;
}

/** {@link connectTls} as a promise, with a deadline for the whole handshake (ETIMEDOUT). */
export function openTls(opts: TlsConnectOptions & { timeoutMs: number }): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connectTls(opts, (err, socket) => {
      clearTimeout(timer);
      if (err) reject(err); else resolve(socket!);
    });
    const timer = setTimeout(() => { s.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })); }, opts.timeoutMs);
  });
}

/**
 * A `connect` function for an undici Agent that dials every origin with these trust
 * options (the host and port come from undici).
 */
export function tlsConnector(opts: Omit<TlsConnectOptions, 'host' | 'port'> & { host?: string }) {
  return (o: { hostname: string; port: string }, cb: (...args: [null, TLSSocket] | [Error, null]) => void): TLSSocket =>
    connectTls({
      ...opts,
      host: o.hostname, port: Number(o.port),
      // SNI follows the host the caller configured, not what undici resolved.
      ...(opts.servername === undefined && opts.host !== undefined ? { servername: isIpLike(opts.host) ? false : opts.host } : {}),
    }, (err, socket) => (err ? cb(err, null) : cb(null, socket!)));
}

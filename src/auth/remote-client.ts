/**
 * RemoteAuthClient: the AuthClient over the Auth API (HTTPS, mutual TLS). The server must
 * present a certificate from the cluster's TLS CA with the role "auth"; we present ours.
 * `joinCluster()` is the one call made before we have an identity: it trusts auth by pin.
 */
import { Agent, request } from 'undici';
import type { PeerCertificate } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { AuthClient } from '../api/auth-client.ts';
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
    throw new ConnectionError(`cannot reach the auth service at ${origin}: ${(err as Error).message}`, {
      cause: err, hint: 'Check that `postern serve` with the auth role runs there and that --auth-server is right',
    });
  }
  const text = await res.body.text();
  let json: unknown;
  try { json = text ? JSON.parse(text) : {}; } catch { json = undefined; }
  if (res.statusCode !== 200) throw errorFromBody(res.statusCode, json, 'the auth service');
  return json;
}

/** Makes an AuthClient that talks to auth at host:port with a client identity. */
export function remoteAuthClient(addr: { host: string; port: number }, identity: TlsIdentity): AuthClient {
  const origin = `https://${formatHostPort(addr.host, addr.port)}`;
  const dispatcher = new Agent({
    connect: { ca: identity.caPem, cert: identity.certPem, key: identity.keyPem, checkServerIdentity: requireAuthRole, minVersion: 'TLSv1.3' },
    keepAliveTimeout: 30_000,
  });
  const client: Record<string, unknown> = { close: () => dispatcher.close() };
  for (const method of Object.keys(AUTH_CALLS)) {
    client[method] = async (arg?: unknown) => ((await post(dispatcher, origin, `/v1/call/${method}`, { arg: arg ?? {} })) as { result: unknown }).result;
  }
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

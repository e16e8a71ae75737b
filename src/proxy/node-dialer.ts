/**
 * How the proxy reaches a node for a user: ask auth (authorizeSsh) first, resolve DNS only
 * when auth asks for the addresses (CIDR rules for unregistered hosts), then dial with a
 * timeout and TCP_NODELAY, and audit the connection. Every refusal happens before any dial.
 * The SSH listener, the TLS tunnel and the web terminal all reach nodes through here.
 */
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { lookup } from 'node:dns/promises';
import type { AccessDecision, AccessRequest } from '../api/auth-types.ts';
import type { NodeAccessAuth, NodeDialAuth } from '../api/proxy-auth.ts';
import type { Logger } from '../core/logger.ts';
import { PosternError } from '../core/errors.ts';
import { formatHostPort } from '../core/text.ts';

/** Who is asking, as the proxy verified it. */
export interface NodeCaller {
  user: string;
  principals: string[];
  login?: string;
  clientAddr: string;
}

/** A dialled node and what auth said about it. */
export interface DialledNode {
  sock: Socket;
  decision: Extract<AccessDecision, { kind: 'dial' }>;
}

/** The default time a dial may take. */
export const DEFAULT_DIAL_TIMEOUT_MS = 10_000;

/** Asks auth whether `who` may reach `target:port` and how; resolves DNS when auth wants addresses. */
export async function authorizeNode(
  auth: NodeAccessAuth, who: NodeCaller, target: string, port: number, via: AccessRequest['via'],
): Promise<Extract<AccessDecision, { kind: 'dial' }>> {
  const req: AccessRequest = { user: who.user, principals: who.principals, target, port, clientAddr: who.clientAddr, via, ...(who.login ? { login: who.login } : {}) };
  let decision = await auth.authorizeSsh(req);
  if (decision.kind === 'resolve') {
    const addrs = await lookup(target, { all: true }).catch(() => []);
    if (addrs.length === 0) throw new PosternError('ERR_POSTERN_UNKNOWN_HOST', `cannot resolve host "${target}"`, { status: 404 });
    decision = await auth.authorizeSsh({ ...req, resolved: addrs.map((a) => a.address) });
    if (decision.kind === 'resolve') throw new PosternError('ERR_POSTERN_ACCESS_DENIED', `access to "${target}" denied`, { status: 403 });
  }
  return decision;
}

/** Authorizes, dials and audits; the error says which node could not be reached and why. */
export async function dialNode(
  auth: NodeDialAuth, who: NodeCaller, target: string, port: number, via: AccessRequest['via'],
  log: Logger, timeoutMs = DEFAULT_DIAL_TIMEOUT_MS,
): Promise<DialledNode> {
  const decision = await authorizeNode(auth, who, target, port, via);
  const { host, port: dialPort, node } = decision;
  const name = node ? `node "${node.name}"` : `host "${target}"`;
  const sock = await dial(host, dialPort, timeoutMs).catch((err: Error & { code?: string }) => {
    const why = err.code === 'ECONNREFUSED' ? 'connection refused' : err.code === 'ETIMEDOUT' ? `no answer within ${timeoutMs / 1000}s` : err.message;
    throw new PosternError('ERR_POSTERN_NODE_UNREACHABLE', `cannot reach ${name} at ${formatHostPort(host, dialPort)}: ${why}`, { status: 502 });
  });
  log.info({ user: who.user, login: who.login, target, node: node?.name, via }, 'proxying to node');
  void auth.emitAudit({ type: 'session.proxy', user: who.user, addr: who.clientAddr, success: true, target, node: node?.name, login: who.login, via })
    .catch((err: unknown) => log.warn({ err }, 'could not audit the proxied connection'));
  return { sock, decision };
}

/** Dials with TCP_NODELAY and a timeout. */
export function dial(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host, port, noDelay: true });
    const timer = setTimeout(() => { sock.destroy(); reject(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })); }, timeoutMs);
    sock.once('connect', () => { clearTimeout(timer); sock.removeAllListeners('error'); resolve(sock); });
    sock.once('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

/**
 * The proxy's own SSH connection to a node, for the sessions it carries itself (recording
 * proxy mode, the web terminal). It authenticates as the user's login with whatever
 * certificate an ssh2 agent offers — the client's forwarded agent (recording mode) or the
 * web session's agent served by auth — so the proxy never holds a user's private key; and
 * it accepts the node only with a host certificate of the cluster's host CA that names it
 * (src/ssh/host-trust.ts), exactly as Postern's client does.
 */
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { BaseAgent, Client } from 'ssh2';
import { connectWithCertificate } from '../ssh/ssh2-certs.ts';
import { checkNodeHostKey, NODE_HOST_KEY_ALGORITHMS } from '../ssh/host-trust.ts';
import { ConnectionError, PosternError } from '../core/errors.ts';
import { escapeControl } from '../core/text.ts';
import { NODE_CLIENT_ALGORITHMS } from './ssh-algorithms.ts';

/** What a connection to a node needs. */
export interface NodeConnectOptions {
  /** A dialled socket to the node's sshd. */
  sock: Duplex;
  login: string;
  /** The agent that signs for the user (ssh2 BaseAgent). */
  agent: BaseAgent;
  /** Whether the node may open agent channels back through this agent (the session asked for -A). */
  agentForward?: boolean;
  /** The cluster's host CA keys (wire blobs). */
  hostCaKeys: Buffer[];
  /** The names the node's host certificate may carry (the name the user used, the registered name, ...). */
  names: string[];
  /** For messages: the node as the user named it. */
  label: string;
  now?: () => Date;
  timeoutMs?: number;
}

/** Connects and authenticates; resolves with the ready client. Failures are PosternErrors that name the node. */
export async function connectNodeWithAgent(opts: NodeConnectOptions): Promise<Client> {
  const client = new ssh2.Client();
  let hostProblem: string | undefined;
  try {
    await connectWithCertificate(client, {
      sock: opts.sock as never,
      username: opts.login,
      agent: opts.agent,
      ...(opts.agentForward ? { agentForward: true } : {}),
      readyTimeout: opts.timeoutMs ?? 20_000,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 3,
      algorithms: { ...NODE_CLIENT_ALGORITHMS, serverHostKey: NODE_HOST_KEY_ALGORITHMS },
      hostVerifier: (key: Buffer) => {
        hostProblem = checkNodeHostKey(key, { hostCaKeys: opts.hostCaKeys, names: opts.names, now: opts.now?.() ?? new Date() });
        return hostProblem === undefined;
      },
    });
  } catch (err) {
    client.end();
    opts.sock.destroy();
    const e = err as Error & { level?: string };
    const node = escapeControl(opts.label);
    if (hostProblem !== undefined) {
      throw new ConnectionError(`refusing node "${node}": ${hostProblem}`, { cause: err, hint: 'The node must present the host certificate `postern nodes add` issued; an admin can renew it with:  postern nodes renew NAME' });
    }
    if (e.level === 'client-authentication') {
      throw new PosternError('ERR_POSTERN_NODE_AUTH', `node "${node}" refused the certificate for login "${escapeControl(opts.login)}"`, {
        cause: err, status: 403, exitCode: 255, hint: 'Check that the login is one of yours and that the node trusts the cluster\'s user CA (TrustedUserCAKeys)',
      });
    }
    if (e.level === 'client-timeout') throw new ConnectionError(`no SSH handshake with node "${node}" in time`, { cause: err });
    throw new ConnectionError(`the SSH connection to node "${node}" failed: ${escapeControl(e.message)}`, { cause: err });
  }
  return client;
}

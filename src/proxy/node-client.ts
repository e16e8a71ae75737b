/**
 * The proxy's own SSH connection to a node, for the sessions it carries itself (recording
 * proxy mode, the web terminal). It authenticates as the user's login with whatever
 * certificate an ssh2 agent offers — the client's forwarded agent (recording mode) or the
 * web session's agent served by auth — so the proxy never holds a user's private key; and
 * it accepts the node only with a host certificate of the cluster's host CA that names it
 * (src/ssh/host-trust.ts): the one connection code of src/ssh/node-connect.ts, which Postern's client uses too.
 */
import type { Duplex } from 'node:stream';
import type { BaseAgent, Client } from 'ssh2';
import { connectNodeSsh } from '../ssh/node-connect.ts';
import { PosternError } from '../core/errors.ts';
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
export function connectNodeWithAgent(opts: NodeConnectOptions): Promise<Client> {
  return connectNodeSsh({
    sock: opts.sock,
    label: opts.label,
    login: opts.login,
    trust: { hostCaKeys: opts.hostCaKeys, names: opts.names, now: opts.now?.() ?? new Date() },
    auth: { agent: opts.agent, ...(opts.agentForward ? { agentForward: true } : {}) },
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
    algorithms: NODE_CLIENT_ALGORITHMS,
    hints: {
      hostRefused: 'The node must present the host certificate `postern nodes add` issued; an admin can renew it with:  postern nodes renew NAME',
      authRefused: 'Check that the login is one of yours and that the node trusts the cluster\'s user CA (TrustedUserCAKeys)',
    },
    authRefusedError: (message, options) => new PosternError('ERR_POSTERN_NODE_AUTH', message, { ...options, status: 403, exitCode: 255 }),
  });
}

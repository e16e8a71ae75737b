/**
 * SSH to a node's sshd over a byte stream already dialled, as Postern's client and the
 * proxy (recording mode, the web terminal) both do: the node must present a host
 * certificate that {@link checkNodeHostKey} accepts, and the user authenticates with a
 * certificate, either with its key in hand (the client) or through an agent (the proxy).
 * Every failure becomes a PosternError that names the node.
 */
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client } from 'ssh2';
import { connectWithCertificate } from './ssh2-certs.ts';
import type { CertConnectConfig } from './ssh2-certs.ts';
import { checkNodeHostKey, NODE_HOST_KEY_ALGORITHMS } from './host-trust.ts';
import type { NodeTrust } from './host-trust.ts';
import { ConnectionError, PosternError } from '../core/errors.ts';
import type { PosternErrorOptions } from '../core/errors.ts';
import { escapeControl } from '../core/text.ts';

/** What {@link connectNodeSsh} needs. */
export interface NodeSshOptions {
  /** The byte stream to the node's sshd. */
  sock: Duplex;
  /** How the user named the node, for messages. */
  label: string;
  login: string;
  trust: NodeTrust;
  /** How the certificate is presented: an `authHandler` with the key, or an agent. */
  auth: Pick<CertConnectConfig, 'authHandler' | 'agent' | 'agentForward'>;
  timeoutMs?: number;
  keepaliveMs?: number;
  /** What to offer besides the host key algorithms (the proxy's vetted lists); ssh2's defaults when absent. */
  algorithms?: Omit<NonNullable<CertConnectConfig['algorithms']>, 'serverHostKey'>;
  /** The hints of the two refusals: the client and the proxy send their users to different places. */
  hints: { hostRefused: string; authRefused: string };
  /** The error a node's refusal of the certificate becomes; a ConnectionError unless given. */
  authRefusedError?: (message: string, options: PosternErrorOptions) => PosternError;
}

/**
 * Runs SSH over `opts.sock` and authenticates as `opts.login`; resolves with the ready
 * client. On failure both the client and the stream are closed.
 */
export async function connectNodeSsh(opts: NodeSshOptions): Promise<Client> {
  const client = new ssh2.Client();
  // ssh2 can report twice in one tick (an agent that failed, then "all configured
  // authentication methods failed"): the second error, with no listener left, would take the
  // whole process down. Callers add their own listener to log what comes after.
  client.on('error', () => {});
  let hostProblem: string | undefined;
  try {
    await connectWithCertificate(client, {
      sock: opts.sock,
      username: opts.login,
      ...opts.auth,
      readyTimeout: opts.timeoutMs ?? 20_000,
      keepaliveInterval: opts.keepaliveMs ?? 15_000,
      keepaliveCountMax: 3,
      algorithms: { ...opts.algorithms, serverHostKey: NODE_HOST_KEY_ALGORITHMS },
      hostVerifier: (key: Buffer) => {
        hostProblem = checkNodeHostKey(key, opts.trust);
        return hostProblem === undefined;
      },
    });
  } catch (err) {
    client.end();
    opts.sock.destroy();
    throw nodeConnectError(err as Error & { level?: string }, opts, hostProblem);
  }
  return client;
}

function nodeConnectError(err: Error & { level?: string }, opts: NodeSshOptions, hostProblem?: string): PosternError {
  const node = escapeControl(opts.label);
  if (hostProblem !== undefined) {
    return new ConnectionError(`refusing node "${node}": ${hostProblem}`, { cause: err, hint: opts.hints.hostRefused });
  }
  if (err.level === 'client-authentication') {
    const refused = opts.authRefusedError ?? ((message: string, options: PosternErrorOptions) => new ConnectionError(message, options));
    return refused(`node "${node}" refused the certificate for login "${escapeControl(opts.login)}"`, { cause: err, hint: opts.hints.authRefused });
  }
  if (err.level === 'client-timeout') {
    return new ConnectionError(`no SSH handshake with node "${node}" in time`, { cause: err });
  }
  return new ConnectionError(`the SSH connection to node "${node}" failed: ${escapeControl(err.message)}`, { cause: err });
}

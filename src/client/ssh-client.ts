/**
 * Postern's own SSH client to a node, end to end through the proxy: an ssh2 connection
 * to the proxy (proxy-conn.ts) carries the subsystem `proxy:HOST:PORT`, and a second
 * ssh2 client runs over that stream to the node's sshd, so the proxy only ever sees
 * ciphertext. Both present the user's key with its certificate.
 *
 * The node must prove itself with a host certificate: signed by the cluster's host CA
 * (the `@cert-authority` line `login` wrote to known_hosts), of type host, valid now, and
 * naming the node as the user named it (TARGET or TARGET.<cluster>, or the node name the
 * proxy resolved a selector to). A plain host key is refused: there is nothing to check
 * it against, and Postern never adds keys on first use.
 */
import { readFileSync, existsSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client } from 'ssh2';
import { connectWithCertificate } from '../ssh/ssh2-certs.ts';
import type { CertPublicKeyAuthMethod } from '../ssh/ssh2-certs.ts';
import { checkNodeHostKey, NODE_HOST_KEY_ALGORITHMS } from '../ssh/host-trust.ts';
import type { NodeTrust } from '../ssh/host-trust.ts';
export { acceptedHostNames, checkNodeHostKey, NODE_HOST_KEY_ALGORITHMS } from '../ssh/host-trust.ts';
export type { NodeTrust } from '../ssh/host-trust.ts';
import { encodePrivateKeyOpenSSH, parseAuthorizedKey } from '../ssh/keys.ts';
import type { SshKeyPair } from '../ssh/keys.ts';
import { ConnectionError, PosternError, UsageError } from '../core/errors.ts';
import { escapeControl } from '../core/text.ts';

/** A destination as typed: `[USER@]TARGET`. */
export interface Destination {
  user?: string;
  target: string;
}

/** Splits `[USER@]TARGET` at the last `@`, as ssh does. */
export function parseDestination(text: string): Destination {
  const at = text.lastIndexOf('@');
  const user = at >= 0 ? text.slice(0, at) : undefined;
  const target = at >= 0 ? text.slice(at + 1) : text;
  if (user === '') throw new UsageError(`invalid destination "${escapeControl(text)}": the user before "@" is empty`, { hint: 'postern ssh [USER@]TARGET [COMMAND…]' });
  if (!target) throw new UsageError(`invalid destination "${escapeControl(text)}": no host after "@"`, { hint: 'postern ssh [USER@]TARGET [COMMAND…]' });
  if (/[\s\u0000-\u001f\u007f]/.test(text)) throw new UsageError(`invalid destination "${escapeControl(text)}": it contains a space or a control character`);
  return user === undefined ? { target } : { user, target };
}

/** The host CA keys (wire blobs) of the `@cert-authority` lines of a known_hosts file. */
export function hostCaKeysFromKnownHosts(path: string): Buffer[] {
  if (!existsSync(path)) return [];
  const keys: Buffer[] = [];
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] !== '@cert-authority' || fields.length < 4) continue;
    try {
      keys.push(parseAuthorizedKey(fields.slice(2).join(' ')).wire);
    } catch {
      // a line we cannot read is skipped, as ssh does
    }
  }
  return keys;
}

/** What `connectToNode` needs. */
export interface ConnectToNodeOptions {
  /** The byte stream to the node's sshd (the proxy subsystem channel). */
  stream: Duplex;
  /** How the user named the node, for messages. */
  label: string;
  login: string;
  keyPair: SshKeyPair;
  certificateText: string;
  trust: NodeTrust;
  /** An ssh-agent socket to forward (-A); forwarding is asked for per session. */
  agentSocket?: string;
  timeoutMs?: number;
  keepaliveMs?: number;
}

/**
 * Runs SSH over `stream` to the node and authenticates as `login` with the key and its
 * certificate; resolves with the ready client. A host key that fails `checkNodeHostKey`
 * ends the handshake. Failures are ConnectionError (exit 255).
 */
export async function connectToNode(opts: ConnectToNodeOptions): Promise<Client> {
  const client = new ssh2.Client();
  let hostProblem: string | undefined;
  const method: CertPublicKeyAuthMethod = {
    type: 'publickey',
    username: opts.login,
    key: encodePrivateKeyOpenSSH(opts.keyPair),
    certificate: opts.certificateText,
  };
  try {
    await connectWithCertificate(client, {
      sock: opts.stream,
      username: opts.login,
      // Only the certificate authenticates; the agent (if any) is there to be forwarded.
      authHandler: [method],
      ...(opts.agentSocket ? { agent: opts.agentSocket, agentForward: true } : {}),
      readyTimeout: opts.timeoutMs ?? 20_000,
      keepaliveInterval: opts.keepaliveMs ?? 15_000,
      keepaliveCountMax: 3,
      algorithms: { serverHostKey: NODE_HOST_KEY_ALGORITHMS },
      hostVerifier: (key: Buffer) => {
        hostProblem = checkNodeHostKey(key, opts.trust);
        return hostProblem === undefined;
      },
    });
  } catch (err) {
    client.end();
    opts.stream.destroy();
    throw nodeConnectError(err as Error & { level?: string }, opts.label, opts.login, hostProblem);
  }
  return client;
}

function nodeConnectError(err: Error & { level?: string }, label: string, login: string, hostProblem?: string): PosternError {
  const node = escapeControl(label);
  if (hostProblem !== undefined) {
    return new ConnectionError(`refusing node "${node}": ${hostProblem}`, {
      cause: err,
      hint: 'A node must present the host certificate `postern nodes add` issued (HostCertificate in its sshd_config); if it should, ask an admin to run:  postern nodes renew NAME',
    });
  }
  if (err.level === 'client-authentication') {
    return new ConnectionError(`node "${node}" refused the certificate for login "${escapeControl(login)}"`, {
      cause: err,
      hint: 'Check that the login is one of yours (postern status) and that the node trusts the cluster\'s user CA (TrustedUserCAKeys)',
    });
  }
  if (err.level === 'client-timeout') {
    return new ConnectionError(`no SSH handshake with node "${node}" in time`, { cause: err });
  }
  return new ConnectionError(`the SSH connection to node "${node}" failed: ${escapeControl(err.message)}`, { cause: err });
}

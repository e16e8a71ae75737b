/**
 * The client's SSH connection to the proxy's SSH listener (profile.sshProxyAddr): what
 * `postern proxy ssh` (the OpenSSH ProxyCommand) and `postern ssh` build on.
 *
 *   connectToProxy()     ssh2 client to the proxy, presenting the user certificate
 *   openProxySubsystem() the `proxy:HOST:PORT` subsystem: a byte stream to the node's sshd
 *
 * How the proxy's host key is trusted, as OpenSSH would with the known_hosts `login` wrote
 * (~/.tsh/keys/<proxy>/known_hosts):
 * - a plain host key must equal a key on a line for `[host]:port` (`host` on port 22);
 * - a host certificate is accepted when a `@cert-authority` line whose patterns match the
 *   proxy's name holds its CA and it is a valid host certificate for that name; else its
 *   inner key must be pinned as above (OpenSSH's fallback to the raw key).
 * Anything else is refused with an error that names the file. Nothing is ever added to it.
 */
import { readFileSync, existsSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client, ClientChannel } from 'ssh2';
import { connectWithCertificate, isCertAlgo } from '../ssh/ssh2-certs.ts';
import type { HostKeyAlgorithm } from '../ssh/ssh2-certs.ts';
import { fingerprintSha256, parseAuthorizedKey, wireKeyType } from '../ssh/keys.ts';
import type { SshKeyPair } from '../ssh/keys.ts';
import { parseCertificate, verifyCertificate } from '../ssh/certs.ts';
import type { SshCertificate } from '../ssh/certs.ts';
import { knownHostName } from '../ssh/known-hosts.ts';
import { ConnectionError, PosternError } from '../core/errors.ts';
import { escapeControl, formatHostPort, parseHostPort } from '../core/text.ts';
import { DEFAULT_SSH_PORT } from '../api/types.ts';
import type { Profile } from './profile.ts';

/** What `connectToProxy` needs. */
export interface ConnectToProxyOptions {
  profile: Pick<Profile, 'sshProxyAddr'>;
  keyPair: SshKeyPair;
  certificateText: string;
  /** The known_hosts file `login` wrote (paths.knownHosts). */
  knownHostsPath: string;
  /** The SSH user name: a login in the certificate (preferred) or its key id. */
  username: string;
  /** Handshake and authentication deadline; default 20s. */
  timeoutMs?: number;
  /** Keepalive interval; default 15s, three missed answers end the connection. */
  keepaliveMs?: number;
  /** The clock for host certificate validity; default now. */
  now?: () => Date;
}

/** One known_hosts line taken apart. */
interface KnownHostsEntry {
  marker: '' | '@cert-authority' | '@revoked';
  patterns: string[];
  wire: Buffer;
}

/** Reads the entries of a known_hosts file; lines it cannot read are skipped, as ssh does. */
function readKnownHosts(path: string): KnownHostsEntry[] {
  if (!existsSync(path)) return [];
  const entries: KnownHostsEntry[] = [];
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostsEntry['marker'] = '';
    if (fields[0] === '@cert-authority' || fields[0] === '@revoked') marker = fields.shift() as KnownHostsEntry['marker'];
    if (fields.length < 3) continue;
    try {
      entries.push({ marker, patterns: fields[0].split(','), wire: parseAuthorizedKey(fields.slice(1).join(' ')).wire });
    } catch {
      // not a key we read: skip it
    }
  }
  return entries;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(name);
}

/** known_hosts pattern-list matching: a match of a negated pattern excludes the line. */
function patternsMatch(patterns: string[], name: string): boolean {
  let hit = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) {
      hit = true;
    }
  }
  return hit;
}

/** The host key algorithms offered to the proxy: its certificate first, then plain keys. */
const HOST_KEY_ALGORITHMS: HostKeyAlgorithm[] = [
  'ssh-ed25519-cert-v01@openssh.com', 'ssh-ed25519',
  'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256',
];

/**
 * Decides whether `key` (a host key or host certificate wire blob from the handshake) is
 * the proxy's; returns undefined when trusted, else why not.
 */
export function checkProxyHostKey(key: Buffer, host: string, port: number, knownHostsPath: string, now: Date): string | undefined {
  const name = knownHostName(host, port);
  const entries = readKnownHosts(knownHostsPath);
  const pinned = entries.filter((e) => e.marker === '' && patternsMatch(e.patterns, name)).map((e) => e.wire);
  const revoked = entries.filter((e) => e.marker === '@revoked' && patternsMatch(e.patterns, name)).map((e) => e.wire);
  let type: string;
  try { type = wireKeyType(key); } catch { return 'it sent a host key that cannot be read'; }
  let plain = key;
  let certProblem = '';
  if (isCertAlgo(type)) {
    let cert: SshCertificate;
    try { cert = parseCertificate(key); } catch (err) { return `its host certificate cannot be read: ${(err as Error).message}`; }
    plain = cert.subjectPublicKey;
    if (revoked.some((r) => r.equals(key) || r.equals(plain) || r.equals(cert.signatureKey))) return 'its host key is marked @revoked';
    const cas = entries.filter((e) => e.marker === '@cert-authority' && patternsMatch(e.patterns, name)).map((e) => e.wire);
    try {
      // The certificate names the proxy by its host, as OpenSSH checks it.
      verifyCertificate(cert, { caPublicKeys: cas, type: 'host', principal: host, now });
      return undefined;
    } catch (err) {
      certProblem = ` (its host certificate was not accepted: ${escapeControl((err as Error).message)})`;
    }
  } else if (revoked.some((r) => r.equals(key))) {
    return 'its host key is marked @revoked';
  }
  if (pinned.some((p) => p.equals(plain))) return undefined;
  const fp = fingerprintSha256(plain);
  if (pinned.length === 0) return `no host key for ${name} is in ${knownHostsPath}${certProblem}; its key is ${fp}`;
  return `its host key ${fp} is not the one for ${name} in ${knownHostsPath}${certProblem}`;
}

/**
 * Connects to the proxy's SSH listener as `username`, presenting the certificate; resolves
 * with an authenticated ssh2 client. The proxy's host key must be trusted by the known_hosts
 * file (see the header). TCP_NODELAY is on; keepalives end a dead connection. Failures are
 * ConnectionError (exit 255) with the address and what went wrong. Later errors are
 * absorbed (the client then closes, and so do its channels); add a listener to see them.
 */
export async function connectToProxy(opts: ConnectToProxyOptions): Promise<Client> {
  const { host, port } = parseHostPort(opts.profile.sshProxyAddr, DEFAULT_SSH_PORT);
  const where = formatHostPort(host, port);
  const now = opts.now ?? (() => new Date());
  let hostProblem: string | undefined;
  // Our own socket, so TCP_NODELAY is set before the first byte.
  const sock = netConnect({ host, port, noDelay: true });
  const client = new ssh2.Client();
  try {
    await connectWithCertificate(client, {
      sock,
      host,
      port,
      username: opts.username,
      privateKey: opts.keyPair,
      certificate: opts.certificateText,
      readyTimeout: opts.timeoutMs ?? 20_000,
      keepaliveInterval: opts.keepaliveMs ?? 15_000,
      keepaliveCountMax: 3,
      algorithms: { serverHostKey: HOST_KEY_ALGORITHMS },
      hostVerifier: (key: Buffer) => {
        hostProblem = checkProxyHostKey(key, host, port, opts.knownHostsPath, now());
        return hostProblem === undefined;
      },
    });
  } catch (err) {
    // ssh2 may report more errors while it tears down; they are this one.
    client.on('error', () => {});
    sock.destroy();
    client.end();
    throw proxyConnectError(err as Error & { code?: string | number; level?: string }, where, opts.username, hostProblem);
  }
  // A later failure (keepalive timeout, reset) also closes the client and its channels, which
  // is how callers learn of it; without a listener it would crash the process instead.
  client.on('error', () => {});
  return client;
}

function proxyConnectError(err: Error & { code?: string | number; level?: string }, where: string, username: string, hostProblem?: string): PosternError {
  if (hostProblem !== undefined) {
    return new ConnectionError(`refusing the proxy at ${where}: ${hostProblem}`, {
      cause: err,
      hint: 'If the proxy\'s host key changed, log in again (postern login rewrites known_hosts); otherwise something is between you and the proxy',
    });
  }
  if (err.level === 'client-authentication') {
    return new ConnectionError(`the proxy at ${where} refused the certificate for "${escapeControl(username)}"`, {
      cause: err, hint: 'Log in again with:  postern login',
    });
  }
  // The proxy ended the login saying why (a lock on the user, with its reason): ssh2 gives the
  // disconnect's reason code as `code` and its description as the message.
  if (typeof err.code === 'number' && err.message) {
    return new ConnectionError(`the proxy at ${where} refused the login of "${escapeControl(username)}": ${escapeControl(err.message)}`, {
      cause: err, hint: 'When it says you are locked, ask an admin (postern lock ls shows the locks); otherwise log in again with:  postern login',
    });
  }
  if (err.level === 'client-timeout') {
    return new ConnectionError(`no SSH handshake with the proxy at ${where} in time`, { cause: err, hint: 'Check that the proxy\'s SSH port is reachable' });
  }
  const why = err.code === 'ECONNREFUSED' ? 'connection refused' : err.code === 'ENOTFOUND' ? 'unknown host' : escapeControl(err.message);
  return new ConnectionError(`cannot reach the proxy's SSH listener at ${where}: ${why}`, {
    cause: err, hint: 'Check the proxy\'s SSH address (postern status, postern login) and that it is running',
  });
}

/** The `proxy:HOST:PORT` subsystem name, IPv6 in brackets. */
export function proxySubsystemName(host: string, port: number): string {
  return `proxy:${formatHostPort(host, port)}`;
}

/** A channel to a node through the proxy; `stderr` carries the proxy's messages, read or resume it. */
export type ProxyChannel = Duplex & { stderr: Readable };

/**
 * Opens the subsystem `proxy:HOST:PORT` and resolves once the node has spoken (an sshd
 * sends its version line first), so a refusal is an error here rather than a dead stream.
 * The proxy reports a refusal as text on the channel's stderr before it closes; that
 * becomes a PosternError (ERR_POSTERN_PROXY_REFUSED, exit 255) with the text escaped.
 */
export function openProxySubsystem(client: Client, host: string, port: number, opts: { timeoutMs?: number } = {}): Promise<ProxyChannel> {
  const target = formatHostPort(host, port);
  return new Promise((resolve, reject) => {
    client.subsys(proxySubsystemName(host, port), (err: Error | undefined, ch: ClientChannel) => {
      if (err) {
        reject(new ConnectionError(`the proxy refused the subsystem for ${escapeControl(target)}: ${escapeControl(err.message)}`, { cause: err }));
        return;
      }
      let stderr = '';
      let stderrEnded = false;
      let exitCode: number | undefined;
      let settled = false;
      const onStderr = (d: Buffer): void => { if (stderr.length < 8192) stderr += d.toString('utf8'); };
      const onStderrEnd = (): void => { stderrEnded = true; };
      const onExit = (code: number | null): void => { if (typeof code === 'number') exitCode = code; };
      ch.stderr.on('data', onStderr).once('end', onStderrEnd);
      ch.on('exit', onExit);
      const cleanup = (): void => {
        settled = true;
        clearTimeout(timer);
        ch.off('readable', onReadable);
        ch.off('end', onEnd);
        ch.off('close', onEnd);
        ch.off('error', onError);
        ch.off('exit', onExit);
        ch.stderr.off('data', onStderr);
        ch.stderr.off('end', onStderrEnd);
      };
      const fail = (): void => {
        if (settled) return;
        // stderr precedes EOF on the wire; let its last chunk be delivered first.
        const finish = (): void => {
          if (settled) return;
          cleanup();
          const text = escapeControl(stderr.trim().replace(/\r?\n/g, '; '));
          reject(text
            ? new PosternError('ERR_POSTERN_PROXY_REFUSED', text, { exitCode: 255, status: 502 })
            : new ConnectionError(`the proxy closed the connection to ${escapeControl(target)}${exitCode !== undefined ? ` (status ${exitCode})` : ''} before the node answered`));
        };
        if (stderrEnded) setImmediate(finish);
        else {
          ch.stderr.once('end', () => setImmediate(finish));
          ch.stderr.resume();
          setTimeout(finish, 500);
        }
      };
      const onReadable = (): void => {
        if (ch.readableLength > 0) {
          cleanup();
          resolve(ch as ProxyChannel);
          return;
        }
        ch.read(0); // lets 'end' fire when the proxy closed without a byte
      };
      const onEnd = (): void => fail();
      const onError = (e: Error): void => {
        if (settled) return;
        cleanup();
        reject(new ConnectionError(`the channel to ${escapeControl(target)} through the proxy failed: ${escapeControl(e.message)}`, { cause: e }));
      };
      const timer = setTimeout(() => {
        if (settled) return;
        cleanup();
        ch.destroy();
        reject(new ConnectionError(`no answer from ${escapeControl(target)} through the proxy within ${Math.round((opts.timeoutMs ?? 30_000) / 1000)}s`));
      }, opts.timeoutMs ?? 30_000);
      ch.on('readable', onReadable);
      ch.once('end', onEnd);
      ch.once('close', onEnd);
      ch.once('error', onError);
    });
  });
}

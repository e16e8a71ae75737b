/**
 * The proxy role: its own SSH host key and TLS identity (in <data-dir>/proxy, never a CA
 * key), the web server, and a heartbeat that tells auth where the proxy can be reached.
 */
import { tuneHeapForRelay } from '../core/pipe.ts';
import { readFileSync, existsSync } from 'node:fs';
import { serverPaths } from '../core/server-paths.ts';
import type { ServerPaths } from '../core/server-paths.ts';
import { X509Certificate } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ProxyAuth } from '../api/proxy-auth.ts';
import type { Logger } from '../core/logger.ts';
import { ensurePrivateDir, writeFileAtomic } from '../core/fs.ts';
import { ConfigError } from '../core/errors.ts';
import { formatHostPort } from '../core/text.ts';
import { loadOrCreateTlsKey } from '../core/tls-keys.ts';
import { generateKeyPair, encodePrivateKeyOpenSSH, parsePrivateKeyOpenSSH, formatAuthorizedKey } from '../ssh/keys.ts';
import type { SshKeyPair } from '../ssh/keys.ts';
import { buildWebServer } from './web-server.ts';
import type { WebServerOptions } from './web-server.ts';
import { listen } from './listen.ts';
import { startSshListener } from './ssh-server.ts';
import { SessionHub } from './session-hub.ts';
import { ClusterInfoSource } from './cluster-info.ts';
import type { SessionHubOptions } from './session-hub.ts';
import { loadPeerTls, peerJoiner, peerPublicAddr, startPeerServer } from './peer-relay.ts';
import type { RunningPeerServer } from './peer-relay.ts';
import type { Clock } from '../core/clock.ts';
import type { SshConnLimits, WebConnLimits } from './conn-limits.ts';

/** Where and how the proxy runs. */
export interface ProxyOptions {
  name: string;
  dataDir: string;
  auth: ProxyAuth;
  webAddr: { host: string; port: number };
  sshAddr: { host: string; port: number };
  /** The host (and web port) users reach the proxy at; defaults from the listen address. */
  publicAddr?: { host: string; port?: number };
  /** A TLS certificate and key from elsewhere (e.g. a public CA), instead of the cluster's. */
  certFile?: string;
  keyFile?: string;
  /** The peer listener (peer-relay.ts): other proxies relay joins of this proxy's sessions here; unset: none. */
  peerAddr?: { host: string; port: number };
  /** Where other proxies reach the peer listener (default: its host, or this host's first address). */
  peerPublicAddr?: { host: string; port?: number };
  log: Logger;
  clock: Clock;
  /** sshd's defences on the SSH listener (conn-limits.ts defaults where not given). */
  sshLimits?: Partial<SshConnLimits>;
  /** The web port's per-source cap and header timeout (conn-limits.ts defaults where not given). */
  webLimits?: Partial<WebConnLimits>;
}

/** A running proxy. */
export interface RunningProxy {
  webPort: number;
  webPublicAddr: string;
  sshPublicAddr: string;
  /** Where other proxies relay joins to this one, when it listens for them. */
  peerPublicAddr?: string;
  sshHostKey: SshKeyPair;
  close(): Promise<void>;
}

const DAY = 86_400_000;

/** How long each step of a shutdown may take (sessions, then listeners): the whole stays bounded. */
export const SHUTDOWN_STEP_MS = 5_000;

/** Waits for `p` at most `ms`; calls `late` when the time ran out first. */
async function within(p: Promise<unknown>, ms: number, late: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), ms); });
  const done = await Promise.race([p.then(() => false, () => false), timedOut]);
  clearTimeout(timer);
  if (done) late();
}

/** Loads the proxy's SSH host key, making it on first start. */
export function loadOrCreateHostKey(path: string): SshKeyPair {
  if (existsSync(path)) return parsePrivateKeyOpenSSH(readFileSync(path, 'utf8'));
  const pair = generateKeyPair();
  writeFileAtomic(path, encodePrivateKeyOpenSSH(pair, 'postern proxy host key'), 0o600);
  writeFileAtomic(`${path}.pub`, formatAuthorizedKey(pair.publicWire, 'postern proxy host key') + '\n', 0o644);
  return pair;
}

async function webTls(opts: ProxyOptions, paths: ServerPaths, hosts: string[]): Promise<{ certPem: string; keyPem: string }> {
  if (opts.certFile || opts.keyFile) {
    if (!opts.certFile || !opts.keyFile) throw new ConfigError('--cert-file and --key-file go together');
    try {
      return { certPem: readFileSync(opts.certFile, 'utf8'), keyPem: readFileSync(opts.keyFile, 'utf8') };
    } catch (err) {
      throw new ConfigError(`cannot read the TLS certificate or key: ${(err as Error).message}`, { cause: err });
    }
  }
  const keyPath = paths.proxyWebKey;
  const certPath = paths.proxyWebCert;
  const { keyPem, publicKeyPem } = loadOrCreateTlsKey(keyPath);
  if (existsSync(certPath)) {
    const chain = readFileSync(certPath, 'utf8');
    const leaf = new X509Certificate(chain);
    const names = (leaf.subjectAltName ?? '').split(', ').map((n) => n.replace(/^(DNS:|IP Address:)/, ''));
    const fresh = new Date(leaf.validTo).getTime() - Date.now() > 30 * DAY;
    if (fresh && hosts.every((h) => names.includes(h))) return { certPem: chain, keyPem };
  }
  const { certPem, caPem } = await opts.auth.signTlsCert({ publicKeyPem, hosts });
  const chain = `${certPem.trim()}\n${caPem.trim()}\n`;
  writeFileAtomic(certPath, chain, 0o644);
  return { certPem: chain, keyPem };
}

/** Starts the proxy's listeners. */
export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  tuneHeapForRelay();
  const paths = serverPaths(opts.dataDir);
  ensurePrivateDir(paths.proxyDir);
  const hostKey = loadOrCreateHostKey(paths.proxyHostKey);
  const wildcard = ['0.0.0.0', '::', ''].includes(opts.webAddr.host);
  const publicHost = opts.publicAddr?.host ?? (wildcard ? 'localhost' : opts.webAddr.host);
  const hosts = [...new Set([publicHost, 'localhost', '127.0.0.1', '::1', ...(wildcard ? [] : [opts.webAddr.host])])];
  const tls = await webTls(opts, paths, hosts);

  // Live sessions (recording mode, the web terminal, join); addresses filled in once listening.
  const hubOpts: SessionHubOptions = { auth: opts.auth, proxyName: opts.name, log: opts.log.child({ component: 'sessions' }), clock: opts.clock };
  const hub = new SessionHub(hubOpts);
  // One cached source of the cluster's facts for every part of the proxy.
  const cluster = new ClusterInfoSource(opts.auth);
  const webOpts: WebServerOptions = {
    auth: opts.auth, cluster, tls, webPublicAddr: '', sshPublicAddr: '', sshHostKey: formatAuthorizedKey(hostKey.publicWire), log: opts.log, hub, clock: opts.clock,
    ...(opts.webLimits ? { limits: opts.webLimits } : {}),
  };
  const ssh = await startSshListener({ auth: opts.auth, hostKey, addr: opts.sshAddr, log: opts.log.child({ component: 'ssh' }), clock: opts.clock, hub, cluster, ...(opts.sshLimits ? { limits: opts.sshLimits } : {}) });
  const app: FastifyInstance = buildWebServer(webOpts);
  let webPort: number;
  try {
    webPort = await listen(app, opts.webAddr, '--web-addr');
  } catch (err) {
    await ssh.close();
    throw err;
  }
  webOpts.webPublicAddr = formatHostPort(publicHost, opts.publicAddr?.port ?? webPort);
  webOpts.sshPublicAddr = formatHostPort(publicHost, ssh.port);
  hubOpts.proxyWebAddr = webOpts.webPublicAddr;
  hubOpts.proxySshAddr = webOpts.sshPublicAddr;

  // Joins of sessions other proxies carry, and of ours from other proxies (peer-relay.ts).
  let peer: RunningPeerServer | undefined;
  if (opts.peerAddr) {
    try {
      const peerLog = opts.log.child({ component: 'peer' });
      const peerTls = await loadPeerTls(opts.auth, paths.proxyDir, [...new Set([opts.peerPublicAddr?.host ?? opts.peerAddr.host, ...hosts])].filter((h) => !['0.0.0.0', '::', ''].includes(h)));
      peer = await startPeerServer({ hub, tls: peerTls, addr: opts.peerAddr, log: peerLog });
      hubOpts.proxyPeerAddr = peerPublicAddr(opts.peerAddr, peer.port, opts.peerPublicAddr);
      hubOpts.remote = peerJoiner({ tls: peerTls, log: peerLog });
    } catch (err) {
      await Promise.all([app.close(), ssh.close()]);
      throw err;
    }
  }

  const heartbeat = async (): Promise<void> => {
    try {
      await opts.auth.heartbeatProxy({ name: opts.name, webPublicAddr: webOpts.webPublicAddr, sshPublicAddr: webOpts.sshPublicAddr });
    } catch (err) {
      opts.log.warn({ err }, 'proxy heartbeat to auth failed');
    }
  };
  await opts.auth.heartbeatProxy({ name: opts.name, webPublicAddr: webOpts.webPublicAddr, sshPublicAddr: webOpts.sshPublicAddr });
  const timer = setInterval(() => void heartbeat(), 60_000);
  timer.unref();

  return {
    webPort,
    webPublicAddr: webOpts.webPublicAddr,
    sshPublicAddr: webOpts.sshPublicAddr,
    ...(hubOpts.proxyPeerAddr ? { peerPublicAddr: hubOpts.proxyPeerAddr } : {}),
    sshHostKey: hostKey,
    async close() {
      clearInterval(timer);
      // Live sessions end with a message to everyone in them (and their node connections
      // close); a recording that cannot be finished in time does not hold the shutdown.
      await within(hub.close(), SHUTDOWN_STEP_MS, () => opts.log.warn({}, 'live sessions did not end in time; closing the listeners anyway'));
      const listeners = Promise.all([app.close(), ssh.close(), peer?.close()]);
      await within(listeners, SHUTDOWN_STEP_MS, () => {
        // Browsers that do not answer the websocket close, and connections still open, are cut.
        opts.log.warn({}, 'connections still open after the shutdown grace time: closing them');
        for (const ws of (app as unknown as { websocketServer?: { clients: Set<{ terminate(): void }> } }).websocketServer?.clients ?? []) ws.terminate();
        (app.server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await within(listeners, SHUTDOWN_STEP_MS, () => opts.log.warn({}, 'the listeners did not close in time'));
    },
  };
}

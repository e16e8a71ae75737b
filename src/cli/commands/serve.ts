/**
 * `postern serve`: runs the auth service and the proxy (both by default), prints one ready
 * line, and shuts down cleanly on SIGTERM or SIGINT.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { hostname } from 'node:os';
import pino from 'pino';
import type { Deps } from '../deps.ts';
import type { RunState } from '../run-state.ts';
import { resolveServeConfig } from './serve-config.ts';
import type { ServeFlags } from './serve-config.ts';
import { resolveDataDir, dataDirOption } from '../options.ts';
import { describeStorage } from '../../storage/open.ts';
import { startAuthService } from '../../auth/service.ts';
import type { RunningAuth } from '../../auth/service.ts';
import { localAuthClient } from '../../auth/auth-server.ts';
import type { AuthClient } from '../../api/auth-client.ts';
import { remoteProxyClient } from '../proxy-auth-client.ts';
import { startProxy } from '../../proxy/proxy-service.ts';
import type { RunningProxy } from '../../proxy/proxy-service.ts';
import type { Logger } from '../../core/logger.ts';
import { formatHostPort } from '../../core/text.ts';
import { out, colours } from '../output.ts';
import { assertSsh2Patched } from '../../ssh/ssh2-capabilities.ts';
import { DEFAULT_SSH_LIMITS, DEFAULT_WEB_LIMITS, formatMaxStartups } from '../../proxy/conn-limits.ts';
import { formatDuration } from '../../core/durations.ts';

/** How serve writes its logs: JSON lines, or pino-pretty's readable lines. */
export type LogFormat = 'json' | 'text';

/** The log format: --log-format, else text on a terminal and JSON otherwise (a file, journald, a pipe). */
export function logFormatFor(flag: LogFormat | undefined, deps: Deps): LogFormat {
  return flag ?? (deps.io.stderr.isTTY ? 'text' : 'json');
}

/** The server's logger on stderr, in the format asked for; pino-pretty is loaded only for text. */
export async function serverLogger(format: LogFormat, deps: Deps, debug: boolean): Promise<Logger> {
  const opts = { level: debug ? 'debug' : 'info', base: { pid: process.pid } };
  if (format === 'json') return pino(opts, deps.io.stderr) as unknown as Logger;
  const { default: pretty } = await import('pino-pretty');
  const colorize = colours(deps, deps.io.stderr).level > 0;
  const stream = pretty({ colorize, sync: true, destination: deps.io.stderr, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  return pino(opts, stream) as unknown as Logger;
}

/** Starts what the config asks for and resolves when a signal has shut it down. */
export async function runServe(flags: ServeFlags & { logFormat?: LogFormat }, deps: Deps, debug: boolean): Promise<void> {
  assertSsh2Patched(); // the ssh2 patches are there (docs/ssh2-patches.md), before anything uses ssh2
  const cfg = resolveServeConfig(flags, resolveDataDir(undefined, deps), deps.env);
  const log = await serverLogger(logFormatFor(flags.logFormat, deps), deps, debug);
  const name = hostname();
  let auth: RunningAuth | undefined;
  let proxy: RunningProxy | undefined;
  let client: AuthClient | undefined;
  const stop = async (): Promise<void> => {
    await proxy?.close().catch((err: unknown) => log.error({ err }, 'closing the proxy failed'));
    await client?.close().catch(() => {});
    await auth?.close().catch((err: unknown) => log.error({ err }, 'closing auth failed'));
  };
  const stopped = new Promise<string>((resolve) => {
    const unsubscribe = deps.signals.on(['SIGTERM', 'SIGINT'], (sig) => { unsubscribe(); resolve(sig); });
  });
  try {
    let clusterName = cfg.clusterName;
    let caPin: string | undefined;
    if (cfg.roles.auth) {
      auth = await startAuthService({ dataDir: cfg.dataDir, storage: cfg.storage, clusterName: cfg.clusterName, authAddr: cfg.authAddr, settings: cfg.settings, clock: deps.clock, log });
      caPin = auth.caPin;
    }
    if (cfg.roles.proxy) {
      client = auth ? localAuthClient(auth.auth, { role: 'proxy', name }) : await remoteProxyClient({ dataDir: cfg.dataDir, authServers: cfg.authServers!, joinToken: cfg.joinToken, caPin: cfg.caPin }, name, log);
      const info = await client.ping();
      clusterName = info.clusterName;
      proxy = await startProxy({
        name, dataDir: cfg.dataDir, auth: client, webAddr: cfg.webAddr, sshAddr: cfg.sshAddr, publicAddr: cfg.publicAddr,
        certFile: cfg.certFile, keyFile: cfg.keyFile, log, clock: deps.clock, sshLimits: cfg.sshLimits, webLimits: cfg.webLimits,
        ...(cfg.peerAddr ? { peerAddr: cfg.peerAddr } : {}), ...(cfg.peerPublicAddr ? { peerPublicAddr: cfg.peerPublicAddr } : {}),
      });
      caPin ??= cfg.caPin;
    }
    const parts = [`cluster=${clusterName}`];
    if (proxy) parts.push(`web=https://${proxy.webPublicAddr}`, `ssh=${proxy.sshPublicAddr}`);
    if (proxy?.peerPublicAddr) parts.push(`peer=${proxy.peerPublicAddr}`);
    if (auth) parts.push(`auth=${formatHostPort(cfg.authAddr.host, auth.apiPort)}`);
    if (caPin) parts.push(`ca-pin=${caPin}`);
    parts.push(`data-dir=${cfg.dataDir}`);
    if (auth && cfg.storage.kind !== 'sqlite') parts.push(`storage=${describeStorage(cfg.storage)}`);
    const c = colours(deps);
    out(deps, `${c.green('ready:')} ${parts.join(' ')}`);
    // Only a cluster without users needs its first admin (npm start invites one itself).
    if (auth && (await auth.auth.call({ role: 'admin', name: 'serve' }, 'listUsers', {}) as unknown[]).length === 0) {
      out(deps, `Next: add the first admin:  postern users add NAME --logins LOGINS --roles admin --data-dir ${cfg.dataDir}`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const sig = await stopped;
  log.info({ signal: sig }, 'shutting down');
  await stop();
  out(deps, 'stopped');
  // Each step of stop() is bounded; a peer that never closes its side must not keep serve running.
  setTimeout(() => process.exit(), 2_000).unref();
}

/** Registers `postern serve`. */
export function registerServe(program: Command, deps: Deps, _state: RunState): void {
  program.command('serve').description('run the auth service and the proxy (the jump box side)')
    .option('--config <file>', 'a YAML file with the same settings as the flags (flags win)')
    .addOption(dataDirOption())
    .option('--web-addr <host:port>', 'HTTPS address of the web UI and API (default 0.0.0.0:3080)')
    .option('--ssh-addr <host:port>', 'address of the proxy\'s SSH listener (default 0.0.0.0:3023)')
    .option('--auth-addr <host:port>', 'address of the Auth API (default 127.0.0.1:3025)')
    .option('--public-addr <host[:port]>', 'the name (and web port) users reach the proxy at (default: localhost or the listen host)')
    .option('--cluster-name <name>', 'the cluster\'s name, fixed at first start (default: this host\'s name)')
    .option('--roles <roles>', 'what this process runs: auth,proxy (default), auth, or proxy')
    .option('--auth-server <host:port,...>', 'with --roles proxy: the auth server, or several on one database separated by commas (calls fail over between them)')
    .option('--join-token <token>', 'with --roles proxy: the token from `postern tokens add --type proxy`')
    .option('--ca-pin <pin>', 'with --roles proxy: the cluster CA pin to trust auth by (sha256:…)')
    .option('--peer-addr <host:port>', 'with the proxy role: where other proxies relay joins of this proxy\'s live sessions over mutual TLS (default: the web host, port 3021; off for none)')
    .option('--peer-public-addr <host[:port]>', 'the address other proxies reach --peer-addr at (default: its host, or this host\'s first network address)')
    .option('--cert-file <file>', 'a TLS certificate chain for the web address (else the cluster CA issues one)')
    .option('--key-file <file>', 'the key of --cert-file')
    .option('--second-factor <mode>', 'the cluster\'s second factor: otp (default) or off')
    .addOption(new Option('--log-format <format>', 'how logs on stderr look (default: text on a terminal, else json)').choices(['json', 'text']))
    .option('--storage <url>', 'with the auth role: a PostgreSQL database for several auth servers, postgres://USER@HOST:PORT/DB?sslmode=verify-full (default $POSTERN_STORAGE, else SQLite in the data dir)')
    .option('--login-grace-time <duration>', `an SSH connection that has not logged in within this is closed, as sshd's LoginGraceTime (default ${formatDuration(DEFAULT_SSH_LIMITS.loginGraceMs)})`)
    .option('--max-startups <start:rate:full>', `unauthenticated SSH connections: from start on refuse rate% of new ones, rising to all at full, as sshd's MaxStartups (default ${formatMaxStartups(DEFAULT_SSH_LIMITS.maxStartups)})`)
    .option('--per-source-max-startups <n>', `unauthenticated SSH connections one address may hold (default ${DEFAULT_SSH_LIMITS.perSourceMaxStartups})`)
    .option('--max-auth-tries <n>', `failed logins before an SSH connection is closed, as sshd's MaxAuthTries (default ${DEFAULT_SSH_LIMITS.maxAuthTries})`)
    .option('--web-max-connections-per-source <n>', `connections one address may hold on the web port; more get 429 (default ${DEFAULT_WEB_LIMITS.maxConnectionsPerSource})`)
    .option('--web-header-timeout <duration>', `a web connection must finish TLS and send its request within this (default ${formatDuration(DEFAULT_WEB_LIMITS.headerTimeoutMs)})`)
    .action((opts: ServeFlags & { logFormat?: LogFormat }, cmd: Command) => runServe(opts, deps, Boolean(cmd.optsWithGlobals().debug)));
}

/**
 * `postern serve`: runs the auth service and the proxy (both by default), prints one ready
 * line, and shuts down cleanly on SIGTERM or SIGINT.
 */
import type { Command } from 'commander';
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
import { remoteAuthClient, joinCluster } from '../../auth/remote-client.ts';
import type { AuthClient } from '../../api/auth-client.ts';
import { startProxy } from '../../proxy/proxy-service.ts';
import type { RunningProxy } from '../../proxy/proxy-service.ts';
import { proxyIdentity } from '../../proxy/join.ts';
import type { Logger } from '../../core/logger.ts';
import { formatHostPort } from '../../core/text.ts';
import { out, colours } from '../output.ts';
import { assertSsh2Patched } from '../../ssh/ssh2-capabilities.ts';

/** Starts what the config asks for and resolves when a signal has shut it down. */
export async function runServe(flags: ServeFlags, deps: Deps, debug: boolean): Promise<void> {
  assertSsh2Patched(); // the ssh2 patches are there (docs/ssh2-patches.md), before anything uses ssh2
  const cfg = resolveServeConfig(flags, resolveDataDir(undefined, deps), deps.env);
  const log = pino({ level: debug ? 'debug' : 'info', base: { pid: process.pid } }, deps.io.stderr) as unknown as Logger;
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
      client = auth
        ? localAuthClient(auth.auth, { role: 'proxy', name })
        : remoteAuthClient(cfg.authServer!, await proxyIdentity({ dataDir: cfg.dataDir, name, authServer: cfg.authServer!, joinToken: cfg.joinToken, caPin: cfg.caPin }, joinCluster));
      const info = await client.ping();
      clusterName = info.clusterName;
      proxy = await startProxy({
        name, dataDir: cfg.dataDir, auth: client, webAddr: cfg.webAddr, sshAddr: cfg.sshAddr, publicAddr: cfg.publicAddr,
        certFile: cfg.certFile, keyFile: cfg.keyFile, log, clock: deps.clock,
      });
      caPin ??= cfg.caPin;
    }
    const parts = [`cluster=${clusterName}`];
    if (proxy) parts.push(`web=https://${proxy.webPublicAddr}`, `ssh=${proxy.sshPublicAddr}`);
    if (auth) parts.push(`auth=${formatHostPort(cfg.authAddr.host, auth.apiPort)}`);
    if (caPin) parts.push(`ca-pin=${caPin}`);
    parts.push(`data-dir=${cfg.dataDir}`);
    if (auth && cfg.storage.kind !== 'sqlite') parts.push(`storage=${describeStorage(cfg.storage)}`);
    const c = colours(deps);
    out(deps, `${c.green('ready:')} ${parts.join(' ')}`);
    if (auth) {
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
    .option('--auth-server <host:port>', 'with --roles proxy: the auth server to use')
    .option('--join-token <token>', 'with --roles proxy: the token from `postern tokens add --type proxy`')
    .option('--ca-pin <pin>', 'with --roles proxy: the cluster CA pin to trust auth by (sha256:…)')
    .option('--cert-file <file>', 'a TLS certificate chain for the web address (else the cluster CA issues one)')
    .option('--key-file <file>', 'the key of --cert-file')
    .option('--second-factor <mode>', 'the cluster\'s second factor: otp (default) or off')
    .option('--storage <url>', 'with the auth role: a PostgreSQL database for several auth servers, postgres://USER@HOST:PORT/DB?sslmode=verify-full (default $POSTERN_STORAGE, else SQLite in the data dir)')
    .action((opts: ServeFlags, cmd: Command) => runServe(opts, deps, Boolean(cmd.optsWithGlobals().debug)));
}

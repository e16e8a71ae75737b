/**
 * A proxy-only `serve`'s way to auth: its identity (joined with the token on first start,
 * renewed when due; src/proxy/join.ts) and a client of every auth server it was given,
 * failing over between them (src/auth/remote-client.ts). The CLI wires the two because the
 * proxy reaches auth only through the AuthClient contract.
 */
import { remoteAuthClient, joinCluster } from '../auth/remote-client.ts';
import type { AuthClient } from '../api/auth-client.ts';
import { proxyIdentity, renewProxyIdentityIfDue } from '../proxy/join.ts';
import type { JoinCall } from '../proxy/join.ts';
import { ConnectionError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

/** What a proxy-only serve was told about its cluster. */
export interface ProxyJoinConfig {
  dataDir: string;
  /** Each auth server, the first tried first. */
  authServers: Array<{ host: string; port: number }>;
  joinToken?: string;
  caPin?: string;
}

/**
 * The proxy's client of the auth servers it was given: joined once through the first that
 * answers, then failing over between all of them (src/auth/remote-client.ts).
 */
export async function remoteProxyClient(cfg: ProxyJoinConfig, name: string, log: Logger): Promise<AuthClient> {
  const servers = cfg.authServers;
  const joinAny: JoinCall = async (_addr, pin, req) => {
    let lastErr: unknown;
    for (const a of servers) {
      try { return await joinCluster(a, pin, req); } catch (err) {
        if (!(err instanceof ConnectionError)) throw err;
        lastErr = err;
      }
    }
    throw lastErr;
  };
  const joined = await proxyIdentity({ dataDir: cfg.dataDir, name, authServer: servers[0], joinToken: cfg.joinToken, caPin: cfg.caPin }, joinAny);
  // Renewed at start when it ends within 30 days (src/proxy/join.ts).
  const { identity, renewed } = await renewProxyIdentityIfDue(cfg.dataDir, joined, async (publicKeyPem) => {
    const current = remoteAuthClient(servers, joined);
    try { return await current.renewProxyIdentity({ publicKeyPem }); } finally { await current.close(); }
  }, new Date());
  if (renewed) log.info({}, 'the proxy\'s identity was renewed for a year');
  return remoteAuthClient(servers, identity, {
    onHealth: (origin, up, err) => {
      if (up) log.info({ authServer: origin }, 'auth server is back');
      else log.warn({ authServer: origin, err: err?.message }, 'auth server unreachable: calls go to the others');
    },
  });
}

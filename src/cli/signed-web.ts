/** The web API as the logged-in user: the stored login's profile and a request signer (as `postern ls` uses). */
import type { Deps } from './deps.ts';
import { tshHome } from '../client/paths.ts';
import { loadLogin } from '../client/stored-login.ts';
import type { WebClient } from '../client/web-client.ts';
import { requestSigner } from '../client/request-signing.ts';
import type { RequestSigner } from '../client/request-signing.ts';
import { parseHostPort } from '../core/text.ts';
import { DEFAULT_WEB_PORT } from '../api/types.ts';

/** Runs `fn` with a client of the profile's proxy and a signer for its certificate, then closes the client. */
export async function withSignedWeb<T>(proxy: string | undefined, deps: Deps, fn: (web: WebClient, sign: RequestSigner) => Promise<T>): Promise<T> {
  const home = tshHome(deps.env, deps.homeDir);
  const proxyHost = proxy ? parseHostPort(proxy, DEFAULT_WEB_PORT).host : undefined;
  const login = loadLogin(home, proxyHost, deps.clock.now());
  const web = parseHostPort(login.profile.webProxyAddr, DEFAULT_WEB_PORT);
  const client = await deps.clients.web({ host: web.host, port: web.port, caPin: login.profile.caPin, insecure: login.profile.insecure });
  try {
    return await fn(client, requestSigner(login.keyPair, login.certificate.raw, () => deps.clock.now()));
  } finally {
    await client.close();
  }
}

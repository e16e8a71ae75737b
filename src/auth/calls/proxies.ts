/** The proxies of the cluster, for admins: `postern proxies ls` and `postern proxies rm` (which revokes). */
import { getJson } from '../../storage/backend.ts';
import { AuditType } from '../../api/audit.ts';
import type { ProxyInfo } from '../../api/auth-types.ts';
import { listProxyIdentities, noSuchProxy, recordProxyIdentity, revokeProxyIdentity } from '../proxy-identities.ts';
import type { ProxyIdentityCache } from '../proxy-identities.ts';
import { ValidationError } from '../../core/errors.ts';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { issueIdentity } from './cluster.ts';

/** How long a proxy identity lives (a join or a renewal). */
export const PROXY_IDENTITY_TTL_MS = 365 * 86_400_000;
import { str } from '../args.ts';
import type { CallContext, Handlers } from './context.ts';

interface Heartbeat { name: string; webPublicAddr: string; sshPublicAddr: string; lastSeen: string }

/** The handlers of listProxies, removeProxy and renewProxyIdentity; `cache` is this auth server's (forgotten on a change here). */
export function proxyCalls(ctx: CallContext, cache: ProxyIdentityCache): Handlers<'listProxies' | 'removeProxy' | 'renewProxyIdentity'> {
  const { backend, clock } = ctx;
  return {
    async listProxies() {
      const byName = new Map<string, ProxyInfo>();
      for (const i of await backend.getRange('proxies')) {
        const h = JSON.parse(i.value) as Heartbeat;
        byName.set(h.name, { name: h.name, webPublicAddr: h.webPublicAddr, sshPublicAddr: h.sshPublicAddr, lastSeen: h.lastSeen });
      }
      for (const r of await listProxyIdentities(backend)) {
        byName.set(r.name, { ...byName.get(r.name), name: r.name, joinedAt: r.joinedAt, ...(r.revokedAt ? { revokedAt: r.revokedAt } : {}) });
      }
      return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
    },

    async renewProxyIdentity(id, req) {
      // Only a joined proxy (AuthServer.call checked its certificate is the one on record).
      if (id.serial === undefined) throw new ValidationError('only a proxy that joined with a token renews its identity');
      const pem = str(req.publicKeyPem, 'publicKeyPem');
      try { createPublicKey(pem); } catch (err) {
        throw new ValidationError('publicKeyPem is not a PEM public key', { cause: err, hint: 'Send the SubjectPublicKeyInfo PEM (-----BEGIN PUBLIC KEY-----) of the new key' });
      }
      const issued = await issueIdentity(ctx, pem, id.name, 'proxy', [], PROXY_IDENTITY_TTL_MS);
      await recordProxyIdentity(backend, id.name, new X509Certificate(issued.certPem).serialNumber, clock.now(), id.serial);
      cache.forget(id.name);
      await ctx.audit({ type: AuditType.proxyJoined, success: true, proxy: id.name, message: 'identity renewed' });
      return issued;
    },

    async removeProxy(id, req) {
      const name = str(req.name, 'name');
      if (!/^[a-zA-Z0-9._-]{1,64}$/.test(name)) throw noSuchProxy(name);
      const heartbeat = await getJson<Heartbeat>(backend, `proxies/${name}`);
      const revoked = await revokeProxyIdentity(backend, name, clock.now());
      cache.forget(name);
      if (!heartbeat && !revoked) throw noSuchProxy(name);
      await backend.delete(`proxies/${name}`);
      await ctx.audit({ type: AuditType.proxyRemoved, user: id.name, success: true, proxy: name });
    },
  };
}

/**
 * The cluster, its settings and its audit log: cluster facts and CA keys, host and TLS
 * certificates for proxies, proxy heartbeats, the settings, and the audit log's calls.
 */
import { AccessDeniedError, ValidationError } from '../../core/errors.ts';
import { VERSION } from '../../core/version.ts';
import { getJson, putJson } from '../../storage/backend.ts';
import type { Backend } from '../../storage/backend.ts';
import { parseAuthorizedKey } from '../../ssh/keys.ts';
import { formatCertificate } from '../../ssh/certs.ts';
import { AuditType, PROXY_AUDIT_TYPES } from '../../api/audit.ts';
import type { AuditType as AuditTypeName } from '../../api/audit.ts';
import * as users from '../users.ts';
import { searchAudit } from '../audit.ts';
import { getSettings, updateSettings } from '../settings.ts';
import { sshCaPublicKey, signWithCa } from '../ssh-ca.ts';
import { issueTlsCertificate } from '../tls-ca.ts';
import type { TlsCaMaterial, TlsIdentityRole } from '../tls-ca.ts';
import { TLS_CA_KEY } from '../cluster-cas.ts';
import { str } from '../args.ts';
import { createPublicKey } from 'node:crypto';
import { listNodeRecords, hostPrincipals } from '../node-registry.ts';
import { allowedUnregistered } from '../access-policy.ts';

/** The audit events a proxy emits (api/audit.ts; anything else from a proxy identity is refused). */
const PROXY_AUDIT: ReadonlySet<string> = new Set(PROXY_AUDIT_TYPES);

/** A PEM public key, or a ValidationError (400) that says so. */
function publicKeyPem(v: unknown): string {
  const pem = str(v, 'publicKeyPem');
  try {
    createPublicKey(pem);
  } catch (err) {
    throw new ValidationError('publicKeyPem is not a PEM public key', { cause: err, hint: 'Send the SubjectPublicKeyInfo PEM (-----BEGIN PUBLIC KEY-----) of the key to certify' });
  }
  return pem;
}
import type { CallContext, Handlers } from './context.ts';

/** The cluster's TLS CA, for the Auth API's server and for issuing identities. */
export async function tlsCa(backend: Backend): Promise<TlsCaMaterial> {
  const ca = await getJson<TlsCaMaterial>(backend, TLS_CA_KEY);
  if (!ca) throw new Error('the TLS CA does not exist');
  return ca;
}

/** Issues a TLS certificate for an identity (Auth API server, admin, proxy). */
export async function issueIdentity(
  ctx: Pick<CallContext, 'backend' | 'clock'>, publicKeyPem: string, commonName: string, role: TlsIdentityRole, hosts: string[], ttlMs: number,
): Promise<{ certPem: string; caPem: string }> {
  const ca = await tlsCa(ctx.backend);
  const usage = role === 'admin' ? 'client' : 'both';
  const certPem = await issueTlsCertificate(ca, { publicKeyPem, commonName, role, hosts, usage, ttlMs, now: ctx.clock.now() });
  return { certPem, caPem: ca.certPem };
}

/** The calls of this group. */
export type ClusterCallName = 'ping' | 'caKeys' | 'signHostCert' | 'signTlsCert' | 'heartbeatProxy' | 'emitAudit' | 'getSettings' | 'updateSettings' | 'searchAudit';

/** The handlers of cluster facts, proxy certificates, settings and the audit log. */
export function clusterCalls(ctx: CallContext): Handlers<ClusterCallName> {
  const { backend, clock, clusterName } = ctx;
  return {
    async ping() {
      const s = await getSettings(backend);
      return {
        clusterName,
        secondFactor: s.second_factor,
        userCaKeys: [await sshCaPublicKey(backend, 'user')],
        hostCaKeys: [await sshCaPublicKey(backend, 'host')],
        serverVersion: VERSION,
        sessionRecording: s.session_recording,
      };
    },

    async caKeys(_id, req) {
      if (req.type !== 'user' && req.type !== 'host') throw new ValidationError('CA type must be "user" or "host"');
      return [await sshCaPublicKey(backend, req.type)];
    },

    async signHostCert(id, req) {
      const key = parseAuthorizedKey(str(req.publicKey, 'publicKey'));
      if (!Array.isArray(req.principals) || req.principals.length === 0) throw new ValidationError('a host certificate needs principals');
      if (id.role === 'proxy') await checkProxyHostPrincipals(backend, clusterName, req.principals.map(String));
      const cert = await signWithCa(backend, 'host', {
        subjectPublicKey: key.wire, keyId: `${id.role}:${id.name}:${req.principals[0]}`, principals: req.principals.map(String),
        ttlMs: Math.min(Number(req.ttlMs) || 0, 365 * 86_400_000), now: clock.now(),
      });
      return formatCertificate(cert, req.principals[0]);
    },

    async signTlsCert(id, req) {
      if (!Array.isArray(req.hosts) || req.hosts.some((h) => typeof h !== 'string')) throw new ValidationError('hosts must be a list of names');
      return issueIdentity(ctx, publicKeyPem(req.publicKeyPem), id.name, 'proxy', req.hosts, 365 * 86_400_000);
    },

    async heartbeatProxy(id, req) {
      if (id.role === 'proxy' && req.name !== id.name) throw new AccessDeniedError(`proxy "${id.name}" may send heartbeats only for itself`);
      const rec = { name: str(req.name, 'name'), webPublicAddr: str(req.webPublicAddr, 'webPublicAddr'), sshPublicAddr: str(req.sshPublicAddr, 'sshPublicAddr'), identity: id.name, lastSeen: clock.now().toISOString() };
      await putJson(backend, `proxies/${rec.name}`, rec);
    },

    async emitAudit(id, req) {
      // A proxy writes only the events a proxy emits: a stolen identity cannot forge logins or admin actions.
      if (id.role === 'proxy' && !PROXY_AUDIT.has(String(req.type))) throw new AccessDeniedError(`a proxy may not write "${String(req.type)}" audit events`);
      await ctx.audit({ ...req, type: str(req.type, 'type') as AuditTypeName, success: Boolean(req.success), reportedBy: `${id.role}:${id.name}` });
    },

    async getSettings() {
      return getSettings(backend);
    },

    async updateSettings(id, req) {
      const next = await updateSettings(backend, req);
      await ctx.audit({ type: AuditType.settingsChanged, user: id.name, success: true, changed: Object.keys(req) });
      return next;
    },

    async searchAudit(id, req) {
      // A proxy reads the log only for a user who holds the admin role (the web UI's audit page).
      if (id.role === 'proxy') {
        const requester = str(req?.requester, 'requester');
        const rec = await users.getUser(backend, requester);
        if (!rec?.roles.includes('admin')) {
          await ctx.audit({ type: AuditType.accessDenied, user: requester, success: false, reason: 'audit log without the admin role', message: 'only admins may read the audit log' });
          throw new AccessDeniedError('only admins may read the audit log', { hint: 'Ask an admin for the admin role' });
        }
      }
      const since = req.since ? new Date(req.since) : undefined;
      if (since && Number.isNaN(since.getTime())) throw new ValidationError('since must be a time');
      const { requester: _r, ...query } = req;
      return searchAudit(backend, { ...query, since });
    },
  };
}

/**
 * A proxy's host certificates are for the recording proxy only (it presents one to the user
 * in place of the node): refused when the cluster does not record at the proxy, and for any
 * name that is not a registered node's (its name, address or name.cluster) or a host the
 * cluster lets users reach unregistered.
 */
async function checkProxyHostPrincipals(backend: Backend, clusterName: string, principals: string[]): Promise<void> {
  const settings = await getSettings(backend);
  if (settings.session_recording !== 'proxy') throw new AccessDeniedError('a proxy gets host certificates only when the cluster records sessions at the proxy');
  const known = new Set((await listNodeRecords(backend)).flatMap((n) => hostPrincipals(n.name, n.addr, clusterName).map((h) => h.toLowerCase())));
  const suffix = `.${clusterName}`;
  for (const given of principals) {
    // The recording proxy names what the user typed and that with the cluster's suffix
    // (web1.example.com → web1.example.com.example.com too): the suffixes go before the check.
    let bare = given.toLowerCase();
    while (bare.endsWith(suffix)) bare = bare.slice(0, -suffix.length);
    if (!known.has(bare) && !known.has(`${bare}${suffix}`) && !allowedUnregistered(settings.allow_unregistered, bare)) {
      throw new AccessDeniedError(`a proxy may not get a host certificate for "${given}": not a registered node`);
    }
  }
}

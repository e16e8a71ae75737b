/**
 * The auth service: the one place that checks credentials and signs certificates. Every
 * call takes the caller's identity; LocalAuthClient and the Auth API both go through
 * `call()`, which enforces who may make which call and dispatches on one handler table,
 * typed against AuthClient and built from the groups in calls/ (users and login, web
 * sessions, nodes and access, sessions and recordings, cluster settings and audit).
 */
import type { Backend } from '../storage/backend.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import { silentLogger } from '../core/logger.ts';
import { AccessDeniedError, ConfigError, ValidationError } from '../core/errors.ts';
import type { AuthCallName, AuthClient } from '../api/auth-client.ts';
import { AUTH_CALLS } from '../api/auth-client.ts';
import type { ClusterSettings, Identity } from '../api/auth-types.ts';
import type { NewAuditEvent } from '../api/audit.ts';
import { AuditType } from '../api/audit.ts';
import { CLUSTER_NAME_KEY, ensureClusterCas } from './cluster-cas.ts';
import type { TlsCaMaterial, TlsIdentityRole } from './tls-ca.ts';
import { updateSettings } from './settings.ts';
import * as tokens from './tokens.ts';
import { emitAudit } from './audit.ts';
import { DEFAULT_SCRYPT_LOG2N, dummyHash } from './passwords.ts';
import { LoginThrottle } from './login-throttle.ts';
import type { CallContext, HandlerTable } from './calls/context.ts';
import { userCalls } from './calls/users.ts';
import { webSessionCalls } from './calls/web-sessions.ts';
import { nodeCalls } from './calls/nodes.ts';
import { sessionCalls } from './calls/sessions.ts';
import { clusterCalls, issueIdentity, tlsCa } from './calls/cluster.ts';
import { webAdminCalls } from './calls/web-admin.ts';
import { nonceCalls } from './calls/nonces.ts';
import { proxyCalls } from './calls/proxies.ts';
import { checkProxyIdentity, recordProxyIdentity, ProxyIdentityCache } from './proxy-identities.ts';
import { X509Certificate } from 'node:crypto';
import { lockCalls } from './calls/locks.ts';

/** What an AuthServer needs. */
export interface AuthServerOptions {
  backend: Backend;
  clock: Clock;
  logger?: Logger;
  /** log2 of scrypt's N for new password hashes; only tests lower it (passwords.ts). */
  passwordCost?: number;
  /** Called just before each password check (tests count them under concurrency). */
  onPasswordCheck?: (user: string) => void;
}

/** The auth service. Create with `AuthServer.open()`, which makes the CAs on first start. */
export class AuthServer {
  readonly backend: Backend;
  readonly clock: Clock;
  readonly log: Logger;
  readonly clusterName: string;
  private readonly handlers: HandlerTable;
  private readonly proxyIdentities = new ProxyIdentityCache();

  private constructor(opts: AuthServerOptions, clusterName: string) {
    this.backend = opts.backend;
    this.clock = opts.clock;
    this.log = opts.logger ?? silentLogger;
    this.clusterName = clusterName;
    const passwordCost = opts.passwordCost ?? DEFAULT_SCRYPT_LOG2N;
    dummyHash(passwordCost); // refuses a cost out of range now, not at the first login
    const ctx: CallContext = {
      backend: this.backend, clock: this.clock, clusterName, passwordCost, audit: (e) => this.audit(e), throttle: new LoginThrottle(),
      ...(opts.onPasswordCheck ? { onPasswordCheck: opts.onPasswordCheck } : {}),
    };
    this.handlers = { ...clusterCalls(ctx), ...userCalls(ctx), ...webSessionCalls(ctx), ...nodeCalls(ctx), ...sessionCalls(ctx), ...nonceCalls(ctx), ...proxyCalls(ctx, this.proxyIdentities), ...lockCalls(ctx),
      ...webAdminCalls(ctx, (id, method, arg) => this.call(id, method, arg)) };
  }

  /** Opens auth on a backend: creates the cluster's CAs on first start, checks the name later. */
  static async open(opts: AuthServerOptions & { clusterName: string; settings?: Partial<ClusterSettings> }): Promise<AuthServer> {
    const b = opts.backend;
    const checkName = (stored: string | undefined): void => {
      if (stored !== undefined && stored !== opts.clusterName) {
        throw new ConfigError(`this data directory belongs to cluster "${stored}", not "${opts.clusterName}"`, {
          hint: `Start with --cluster-name ${stored}, or use another --data-dir`,
        });
      }
    };
    const stored = (await b.get(CLUSTER_NAME_KEY))?.value;
    checkName(stored);
    if (stored === undefined && !/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i.test(opts.clusterName)) {
      throw new ConfigError(`invalid cluster name "${opts.clusterName}"`, { hint: 'Use a DNS-style name such as example.com or prod' });
    }
    // Exactly once across auth servers that start together; a loser then checks the winner's name.
    if (!(await ensureClusterCas(b, opts.clusterName, opts.clock.now()))) checkName((await b.get(CLUSTER_NAME_KEY))?.value);
    if (opts.settings && Object.keys(opts.settings).length > 0) await updateSettings(b, opts.settings);
    return new AuthServer(opts, opts.clusterName);
  }

  /** Runs a call for an identity, refusing what that identity may not do; each handler checks its argument. */
  async call(identity: Identity, method: string, arg: unknown): Promise<unknown> {
    const allowed = Object.hasOwn(AUTH_CALLS, method) ? AUTH_CALLS[method as AuthCallName] : undefined;
    if (!allowed) throw new ValidationError(`unknown auth call "${method}"`);
    if (!allowed.includes(identity.role)) throw new AccessDeniedError(`a ${identity.role} may not call ${method}`);
    await checkProxyIdentity(this.backend, identity, this.proxyIdentities, this.clock.now().getTime());
    // The argument is whatever the caller sent: the handler checks it, so its declared type is not relied on here.
    const handler = this.handlers[method as AuthCallName] as (id: Identity, a: unknown) => Promise<unknown>;
    return handler(identity, arg ?? {});
  }

  /** The TLS CA, for the Auth API's server and for issuing identities. */
  async tlsCa(): Promise<TlsCaMaterial> {
    return tlsCa(this.backend);
  }

  /** Issues a TLS certificate for an identity (Auth API server, admin, proxy). */
  async issueIdentity(publicKeyPem: string, commonName: string, role: TlsIdentityRole, hosts: string[], ttlMs: number): Promise<{ certPem: string; caPem: string }> {
    return issueIdentity(this, publicKeyPem, commonName, role, hosts, ttlMs);
  }

  /** A proxy joins with a token and gets a client identity for the Auth API. */
  async joinProxy(req: { token: string; name: string; publicKeyPem: string }, clientAddr: string): Promise<{ certPem: string; caPem: string; clusterName: string }> {
    const now = this.clock.now();
    if (typeof req.name !== 'string' || !/^[a-zA-Z0-9._-]{1,64}$/.test(req.name)) throw new ValidationError('invalid proxy name');
    if (typeof req.publicKeyPem !== 'string' || !req.publicKeyPem.includes('-----BEGIN PUBLIC KEY-----')) throw new ValidationError('publicKeyPem must be a PEM public key');
    try {
      // One use: the token is gone once a proxy joined with it (two racing joins: one wins).
      await tokens.consumeToken(this.backend, String(req.token ?? ''), 'proxy', now);
    } catch (err) {
      await this.audit({ type: AuditType.proxyJoinFailure, addr: clientAddr, success: false, message: (err as Error).message, proxy: req.name });
      throw err;
    }
    const id = await this.issueIdentity(req.publicKeyPem, req.name, 'proxy', [], 365 * 86_400_000);
    await recordProxyIdentity(this.backend, req.name, new X509Certificate(id.certPem).serialNumber, now);
    this.proxyIdentities.forget(req.name);
    await this.audit({ type: AuditType.proxyJoined, addr: clientAddr, success: true, proxy: req.name });
    return { ...id, clusterName: this.clusterName };
  }

  private async audit(event: NewAuditEvent): Promise<void> {
    try {
      await emitAudit(this.backend, event, this.clock.now());
    } catch (err) {
      this.log.error({ err, event }, 'could not write audit event');
      throw err;
    }
  }
}

/**
 * An AuthClient that calls an AuthServer in the same process as a fixed identity. Arguments
 * and results are cloned, so the proxy never shares objects with auth.
 */
export function localAuthClient(server: AuthServer, identity: Identity): AuthClient {
  const client: Record<string, unknown> = { close: async () => {} };
  for (const method of Object.keys(AUTH_CALLS)) {
    client[method] = async (arg?: unknown) => structuredClone(await server.call(identity, method, structuredClone(arg)));
  }
  return client as unknown as AuthClient;
}

/**
 * The auth service: the one place that checks credentials and signs certificates. Every
 * call takes the caller's identity; LocalAuthClient and the Auth API both go through
 * `call()`, which enforces who may make which call.
 */
import type { Backend } from '../storage/backend.ts';
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import { silentLogger } from '../core/logger.ts';
import {
  AccessDeniedError, BadCredentialsError, ConfigError, ConflictError, OtpReplayError, UserLockedError, ValidationError, InviteInvalidError, PosternError,
} from '../core/errors.ts';
import { parseAuthorizedKey, formatAuthorizedKey } from '../ssh/keys.ts';
import { formatCertificate } from '../ssh/certs.ts';
import type { SshLoginRequest, InviteInfo, AcceptInviteRequest, AcceptInviteResponse, UserInfo, InviteResult, TokenResult } from '../api/types.ts';
import type { AuthClient, ClusterInfo, CreateUserRequest, Identity, ProxyHeartbeat, SshLoginResult, NodeInfo, RoleSpec, AccessRequest, AccessDecision, AddNodeResult } from './auth-client.ts';
import type {
  StartRecordingRequest, StartRecordingResult, AppendRecordingRequest, AppendRecordingResult, FinishRecordingRequest, RecordingReadRequest, RecordingChunk,
} from './auth-client.ts';
import type { RecordingMeta } from '../api/types.ts';
import { castHeader } from '../api/asciicast.ts';
import type { CastHeader } from '../api/asciicast.ts';
import * as recordings from './recordings.ts';
import { SessionCalls } from './session-calls.ts';
import { str } from './args.ts';
import * as nodes from './node-registry.ts';
import * as roleStore from './role-store.ts';
import { authorizeSsh, listNodesFor } from './access-policy.ts';
import type { AccessContext } from './access-policy.ts';
import { AUTH_CALLS } from './auth-client.ts';
import { ensureSshCa, sshCaPublicKey, signWithCa, USER_CERT_EXTENSIONS } from './ssh-ca.ts';
import { createTlsCa, issueTlsCertificate } from './tls-ca.ts';
import type { TlsCaMaterial, TlsIdentityRole } from './tls-ca.ts';
import { getSettings, updateSettings } from './settings.ts';
import type { ClusterSettings } from './settings.ts';
import * as users from './users.ts';
import * as invites from './invites.ts';
import * as tokens from './tokens.ts';
import { emitAudit, searchAudit, AuditType } from './audit.ts';
import type { AuditEvent, AuditQuery } from './audit.ts';
import { hashPassword, verifyPassword, checkPasswordPolicy, dummyHash, DEFAULT_SCRYPT_LOG2N } from './passwords.ts';
import { checkTotp, newTotpSecret, normaliseTotpSecret, totpUri } from './totp.ts';
import { getJson, putJson } from '../storage/backend.ts';
import { VERSION } from '../core/version.ts';

/** The default certificate lifetime of a login. */
export const DEFAULT_LOGIN_TTL = 12 * 3_600_000;
/** Invites live one hour by default and 48 hours at most. */
export const DEFAULT_INVITE_TTL = 3_600_000;
/** The longest invite. */
export const MAX_INVITE_TTL = 48 * 3_600_000;
/** Node host certificates live a year; `nodes renew` issues a new one. */
export const NODE_CERT_TTL = 365 * 86_400_000;

/** What an AuthServer needs. */
export interface AuthServerOptions {
  backend: Backend;
  clock: Clock;
  logger?: Logger;
  /** log2 of scrypt's N for new password hashes; only tests lower it (passwords.ts). */
  passwordCost?: number;
}

/** The auth service. Create with `AuthServer.open()`, which makes the CAs on first start. */
export class AuthServer {
  readonly backend: Backend;
  readonly clock: Clock;
  readonly log: Logger;
  readonly clusterName: string;
  private readonly passwordCost: number;
  private readonly dummyHash: string;
  private readonly sessionCalls: SessionCalls;

  private constructor(opts: AuthServerOptions, clusterName: string) {
    this.backend = opts.backend;
    this.clock = opts.clock;
    this.log = opts.logger ?? silentLogger;
    this.clusterName = clusterName;
    this.passwordCost = opts.passwordCost ?? DEFAULT_SCRYPT_LOG2N;
    this.dummyHash = dummyHash(this.passwordCost);
    this.sessionCalls = new SessionCalls({
      backend: this.backend, clock: this.clock, clusterName, passwordCost: this.passwordCost,
      audit: (e) => this.audit(e),
      checkCredentials: (name, password, otp, addr, settings, now) => this.checkCredentials(name, password, otp, addr, settings, now),
    });
  }

  /** Opens auth on a backend: creates the cluster's CAs on first start, checks the name later. */
  static async open(opts: AuthServerOptions & { clusterName: string; settings?: Partial<ClusterSettings> }): Promise<AuthServer> {
    const b = opts.backend;
    const stored = await b.get('cluster/name');
    if (stored && stored.value !== opts.clusterName) {
      throw new ConfigError(`this data directory belongs to cluster "${stored.value}", not "${opts.clusterName}"`, {
        hint: `Start with --cluster-name ${stored.value}, or use another --data-dir`,
      });
    }
    if (!stored) {
      if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i.test(opts.clusterName)) {
        throw new ConfigError(`invalid cluster name "${opts.clusterName}"`, { hint: 'Use a DNS-style name such as example.com or prod' });
      }
      await b.put('cluster/name', opts.clusterName);
    }
    await ensureSshCa(b, 'user', opts.clusterName);
    await ensureSshCa(b, 'host', opts.clusterName);
    if (!(await b.get('cas/tls'))) {
      try {
        await b.create('cas/tls', JSON.stringify(await createTlsCa(opts.clusterName, opts.clock.now())));
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_POSTERN_ALREADY_EXISTS') throw err;
      }
    }
    if (opts.settings && Object.keys(opts.settings).length > 0) await updateSettings(b, opts.settings);
    return new AuthServer(opts, opts.clusterName);
  }

  /** Runs a call for an identity, refusing what that identity may not do. */
  async call(identity: Identity, method: string, arg: unknown): Promise<unknown> {
    const allowed = Object.hasOwn(AUTH_CALLS, method) ? AUTH_CALLS[method as keyof typeof AUTH_CALLS] : undefined;
    if (!allowed) throw new ValidationError(`unknown auth call "${method}"`);
    if (!allowed.includes(identity.role)) throw new AccessDeniedError(`a ${identity.role} may not call ${method}`);
    type Calls = Record<string, ((id: Identity, a: unknown) => Promise<unknown>) | undefined>;
    const own = (this as unknown as Calls)[`do_${method}`];
    if (own) return own.call(this, identity, arg ?? {});
    const web = (this.sessionCalls as unknown as Calls)[`do_${method}`];
    if (!web) throw new ValidationError(`unknown auth call "${method}"`);
    return web.call(this.sessionCalls, identity, arg ?? {});
  }

  /** The TLS CA, for the Auth API's server and for issuing identities. */
  async tlsCa(): Promise<TlsCaMaterial> {
    const ca = await getJson<TlsCaMaterial>(this.backend, 'cas/tls');
    if (!ca) throw new Error('the TLS CA does not exist');
    return ca;
  }

  /** Issues a TLS certificate for an identity (Auth API server, admin, proxy). */
  async issueIdentity(publicKeyPem: string, commonName: string, role: TlsIdentityRole, hosts: string[], ttlMs: number): Promise<{ certPem: string; caPem: string }> {
    const ca = await this.tlsCa();
    const usage = role === 'admin' ? 'client' : 'both';
    const certPem = await issueTlsCertificate(ca, { publicKeyPem, commonName, role, hosts, usage, ttlMs, now: this.clock.now() });
    return { certPem, caPem: ca.certPem };
  }

  /** A proxy joins with a token and gets a client identity for the Auth API. */
  async joinProxy(req: { token: string; name: string; publicKeyPem: string }, clientAddr: string): Promise<{ certPem: string; caPem: string; clusterName: string }> {
    const now = this.clock.now();
    try {
      await tokens.checkToken(this.backend, String(req.token ?? ''), 'proxy', now);
    } catch (err) {
      await this.audit({ type: AuditType.proxyJoinFailure, addr: clientAddr, success: false, message: (err as Error).message, proxy: req.name });
      throw err;
    }
    if (typeof req.name !== 'string' || !/^[a-zA-Z0-9._-]{1,64}$/.test(req.name)) throw new ValidationError('invalid proxy name');
    const id = await this.issueIdentity(req.publicKeyPem, req.name, 'proxy', [], 365 * 86_400_000);
    await this.audit({ type: AuditType.proxyJoined, addr: clientAddr, success: true, proxy: req.name });
    return { ...id, clusterName: this.clusterName };
  }

  private async audit(event: Omit<AuditEvent, 'time'>): Promise<void> {
    try {
      await emitAudit(this.backend, event, this.clock.now());
    } catch (err) {
      this.log.error({ err, event }, 'could not write audit event');
      throw err;
    }
  }

  // ---- calls (do_<name>): each checks its argument on entry ----

  protected async do_ping(): Promise<ClusterInfo> {
    const s = await getSettings(this.backend);
    return {
      clusterName: this.clusterName,
      secondFactor: s.second_factor,
      userCaKeys: [await sshCaPublicKey(this.backend, 'user')],
      hostCaKeys: [await sshCaPublicKey(this.backend, 'host')],
      serverVersion: VERSION,
      sessionRecording: s.session_recording,
    };
  }

  protected async do_caKeys(_id: Identity, req: { type: string }): Promise<string[]> {
    if (req.type !== 'user' && req.type !== 'host') throw new ValidationError('CA type must be "user" or "host"');
    return [await sshCaPublicKey(this.backend, req.type)];
  }

  /**
   * The checks of every login and of every account change: lockout, password, the TOTP
   * code (once only). Failures count towards the lockout and are audited; the error never
   * says which part was wrong.
   */
  private async checkCredentials(name: string, password: string, otp: unknown, addr: string | undefined, settings: ClusterSettings, now: Date): Promise<users.UserRecord> {
    const policy = { attempts: settings.lockout_attempts, window: settings.lockout_window, duration: settings.lockout_duration };
    const fail = async (reason: string, err: PosternError = new BadCredentialsError()): Promise<never> => {
      const locked = await users.recordFailure(this.backend, name, now, policy);
      await this.audit({ type: AuditType.loginFailure, user: name, addr, success: false, message: reason });
      if (locked) await this.audit({ type: AuditType.userLocked, user: name, addr, success: false, message: `locked until ${locked.toISOString()}` });
      throw err;
    };

    const lock = await users.lockedUntil(this.backend, name, now);
    if (lock) {
      await this.audit({ type: AuditType.loginFailure, user: name, addr, success: false, message: 'user is locked' });
      throw new UserLockedError(lock);
    }
    const user = await users.getUser(this.backend, name);
    const passwordOk = await verifyPassword(password, user?.passwordHash ?? this.dummyHash);
    if (!user || !user.passwordHash || !passwordOk) return fail(!user ? 'unknown user' : !user.passwordHash ? 'user has not signed up' : 'wrong password');
    if (settings.second_factor === 'otp') {
      const code = typeof otp === 'string' ? otp.trim() : '';
      if (!user.totp) return fail('no second factor enrolled');
      const counter = code ? checkTotp(user.totp.secret, code, now) : undefined;
      if (counter === undefined) return fail(code ? 'wrong one-time code' : 'missing one-time code');
      let replayed = false;
      await users.modifyUser(this.backend, name, (u) => {
        if (!u.totp || counter <= u.totp.lastCounter) { replayed = true; return u; }
        return { ...u, totp: { ...u.totp, lastCounter: counter } };
      });
      if (replayed) return fail('one-time code reused', new OtpReplayError());
    }
    await users.clearFailures(this.backend, name);
    return user;
  }

  protected async do_loginSsh(_id: Identity, req: SshLoginRequest & { clientAddr: string }): Promise<SshLoginResult> {
    const now = this.clock.now();
    const name = str(req.user, 'user');
    const password = str(req.password, 'password');
    const addr = typeof req.clientAddr === 'string' ? req.clientAddr : undefined;
    let subject: Buffer;
    try {
      const parsed = parseAuthorizedKey(str(req.publicKey, 'publicKey'));
      if (!/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa)$/.test(parsed.type)) throw new Error(parsed.type);
      subject = parsed.wire;
    } catch {
      throw new ValidationError('publicKey must be an ed25519, ecdsa or rsa public key in authorized_keys format');
    }
    const settings = await getSettings(this.backend);
    const user = await this.checkCredentials(name, password, req.otp, addr, settings, now);

    const requested = req.ttlMs === undefined ? DEFAULT_LOGIN_TTL : Number(req.ttlMs);
    if (!Number.isFinite(requested) || requested < 60_000) throw new ValidationError('ttl must be at least one minute');
    const ttlMs = Math.min(requested, settings.max_session_ttl);
    // The certificate's principals: every login a role of the user grants ({{internal.logins}} is the user's own).
    const principals = roleStore.allowedLogins(await roleStore.existingRoles(this.backend, user.roles), user.logins);
    if (principals.length === 0) {
      await this.audit({ type: AuditType.loginFailure, user: name, addr, success: false, message: 'no role grants a login' });
      throw new AccessDeniedError(`no role of ${name} grants any login, so there is nothing to put in a certificate`, {
        hint: `Ask an admin to give ${name} a role with logins (they see the roles with  postern roles ls)`,
      });
    }
    const cert = await signWithCa(this.backend, 'user', {
      subjectPublicKey: subject, keyId: name, principals, ttlMs, now, extensions: USER_CERT_EXTENSIONS,
    });
    await this.audit({ type: AuditType.loginSuccess, user: name, addr, success: true, method: settings.second_factor === 'otp' ? 'password+otp' : 'password' });
    await this.audit({
      type: AuditType.certIssued, user: name, addr, success: true, serial: cert.serial.toString(), principals,
      validBefore: cert.validBefore.toISOString(),
    });
    return {
      clusterName: this.clusterName,
      user: name,
      logins: principals,
      certificate: formatCertificate(cert, `${name}@${this.clusterName}`),
      validAfter: cert.validAfter.toISOString(),
      validBefore: cert.validBefore.toISOString(),
      hostCaKeys: [await sshCaPublicKey(this.backend, 'host')],
      ttlCapped: ttlMs < requested,
    };
  }

  protected async do_getInvite(_id: Identity, req: { token: string }): Promise<InviteInfo> {
    const inv = await invites.getInvite(this.backend, str(req.token, 'token'), this.clock.now());
    const s = await getSettings(this.backend);
    return {
      user: inv.user,
      expiresAt: inv.expiresAt,
      secondFactor: s.second_factor,
      ...(s.second_factor === 'otp' ? { totpSecret: inv.totpSecret, otpauthUri: totpUri(inv.totpSecret, this.clusterName, inv.user) } : {}),
    };
  }

  protected async do_acceptInvite(_id: Identity, req: AcceptInviteRequest & { token: string; clientAddr: string }): Promise<AcceptInviteResponse> {
    const now = this.clock.now();
    const token = str(req.token, 'token');
    const addr = typeof req.clientAddr === 'string' ? req.clientAddr : undefined;
    const inv = await invites.getInvite(this.backend, token, now);
    const password = str(req.password, 'password');
    checkPasswordPolicy(password);
    const s = await getSettings(this.backend);
    let totp: { secret: string; lastCounter: number } | undefined;
    if (s.second_factor === 'otp') {
      const secret = normaliseTotpSecret(req.totpSecret ?? inv.totpSecret);
      const code = typeof req.otp === 'string' ? req.otp.trim() : '';
      if (!code) throw new ValidationError('a one-time code is needed to confirm the authenticator', { hint: 'Pass the current code with --otp CODE' });
      const counter = checkTotp(secret, code, now);
      if (counter === undefined) {
        await this.audit({ type: AuditType.inviteFailure, user: inv.user, addr, success: false, message: 'wrong one-time code' });
        throw new ValidationError('the one-time code does not match the secret', {
          hint: 'Check the clock of the device and that the app has the secret shown; then enter the current code',
        });
      }
      totp = { secret, lastCounter: counter };
    }
    const passwordHash = await hashPassword(password, this.passwordCost);
    if (!(await invites.consumeInvite(this.backend, token))) throw new InviteInvalidError('the invite was already used');
    await users.modifyUser(this.backend, inv.user, (u) => ({ ...u, passwordHash, ...(totp ? { totp } : {}) }));
    await users.clearFailures(this.backend, inv.user);
    await this.audit({ type: AuditType.inviteAccepted, user: inv.user, addr, success: true });
    return { user: inv.user };
  }

  protected async do_signHostCert(id: Identity, req: { publicKey: string; principals: string[]; ttlMs: number }): Promise<string> {
    const key = parseAuthorizedKey(str(req.publicKey, 'publicKey'));
    if (!Array.isArray(req.principals) || req.principals.length === 0) throw new ValidationError('a host certificate needs principals');
    const cert = await signWithCa(this.backend, 'host', {
      subjectPublicKey: key.wire, keyId: `${id.role}:${id.name}:${req.principals[0]}`, principals: req.principals.map(String),
      ttlMs: Math.min(Number(req.ttlMs) || 0, 365 * 86_400_000), now: this.clock.now(),
    });
    return formatCertificate(cert, req.principals[0]);
  }

  protected async do_signTlsCert(id: Identity, req: { publicKeyPem: string; hosts: string[] }): Promise<{ certPem: string; caPem: string }> {
    if (!Array.isArray(req.hosts) || req.hosts.some((h) => typeof h !== 'string')) throw new ValidationError('hosts must be a list of names');
    return this.issueIdentity(str(req.publicKeyPem, 'publicKeyPem'), id.name, 'proxy', req.hosts, 365 * 86_400_000);
  }

  protected async do_heartbeatProxy(id: Identity, req: ProxyHeartbeat): Promise<void> {
    const rec = { name: str(req.name, 'name'), webPublicAddr: str(req.webPublicAddr, 'webPublicAddr'), sshPublicAddr: str(req.sshPublicAddr, 'sshPublicAddr'), identity: id.name, lastSeen: this.clock.now().toISOString() };
    await putJson(this.backend, `proxies/${rec.name}`, rec);
  }

  protected async do_emitAudit(id: Identity, req: Omit<AuditEvent, 'time'>): Promise<void> {
    await this.audit({ ...req, type: str(req.type, 'type'), success: Boolean(req.success), reportedBy: `${id.role}:${id.name}` });
  }

  private async inviteUrl(token: string): Promise<string> {
    const proxies = await this.backend.getRange('proxies/');
    const newest = proxies.map((p) => JSON.parse(p.value) as { webPublicAddr: string; lastSeen: string }).sort((a, b) => b.lastSeen.localeCompare(a.lastSeen))[0];
    const addr = newest?.webPublicAddr ?? 'localhost:3080';
    return `https://${addr}/web/invite/${token}`;
  }

  private async newInvite(name: string, ttlMs: number): Promise<InviteResult> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_INVITE_TTL) {
      throw new ValidationError('invite ttl must be more than zero and at most 48h');
    }
    const { token, expiresAt } = await invites.createInvite(this.backend, name, ttlMs, newTotpSecret(), this.clock.now());
    return { user: name, inviteUrl: await this.inviteUrl(token), expiresAt: expiresAt.toISOString() };
  }

  protected async do_createUser(id: Identity, req: CreateUserRequest): Promise<InviteResult> {
    const roles = Array.isArray(req.roles) && req.roles.length > 0 ? req.roles.map(String) : ['access'];
    await roleStore.resolveRoles(this.backend, roles);
    const logins = Array.isArray(req.logins) ? req.logins.map(String) : [];
    await users.createUser(this.backend, { name: str(req.name, 'name'), logins, roles, createdAt: this.clock.now().toISOString() });
    const result = await this.newInvite(req.name, Number(req.inviteTtlMs ?? DEFAULT_INVITE_TTL));
    await this.audit({ type: AuditType.userCreated, user: id.name, success: true, target: req.name, roles, logins });
    return result;
  }

  protected async do_listUsers(): Promise<UserInfo[]> {
    const now = this.clock.now();
    return Promise.all((await users.listUsers(this.backend)).map((u) => users.userInfo(this.backend, u, now)));
  }

  protected async do_deleteUser(id: Identity, req: { name: string }): Promise<void> {
    const name = str(req.name, 'name');
    await users.deleteUser(this.backend, name);
    await invites.revokeInvites(this.backend, name);
    await this.audit({ type: AuditType.userDeleted, user: id.name, success: true, target: name });
  }

  protected async do_resetUser(id: Identity, req: { name: string; inviteTtlMs: number }): Promise<InviteResult> {
    const name = str(req.name, 'name');
    await users.modifyUser(this.backend, name, (u) => ({ name: u.name, logins: u.logins, roles: u.roles, createdAt: u.createdAt }));
    await users.clearFailures(this.backend, name);
    const result = await this.newInvite(name, Number(req.inviteTtlMs ?? DEFAULT_INVITE_TTL));
    await this.audit({ type: AuditType.userReset, user: id.name, success: true, target: name });
    return result;
  }

  protected async do_createToken(id: Identity, req: { type: string; ttlMs: number }): Promise<TokenResult> {
    if (req.type !== 'proxy') throw new ValidationError(`unknown token type "${String(req.type)}"`, { hint: 'The type is: proxy' });
    const ttl = Number(req.ttlMs ?? 3_600_000);
    if (!(ttl > 0 && ttl <= 7 * 86_400_000)) throw new ValidationError('token ttl must be more than zero and at most 7 days');
    const { token, expiresAt } = await tokens.createToken(this.backend, 'proxy', ttl, this.clock.now());
    await this.audit({ type: AuditType.tokenCreated, user: id.name, success: true, tokenType: 'proxy', expiresAt: expiresAt.toISOString() });
    return { token, type: 'proxy', expiresAt: expiresAt.toISOString() };
  }

  protected async do_getSettings(): Promise<ClusterSettings> {
    return getSettings(this.backend);
  }

  protected async do_updateSettings(id: Identity, req: Partial<ClusterSettings>): Promise<ClusterSettings> {
    const next = await updateSettings(this.backend, req);
    await this.audit({ type: AuditType.settingsChanged, user: id.name, success: true, changed: Object.keys(req) });
    return next;
  }

  protected async do_searchAudit(id: Identity, req: Omit<AuditQuery, 'since'> & { since?: string; requester?: string }): Promise<AuditEvent[]> {
    // A proxy reads the log only for a user who holds the admin role (the web UI's audit page).
    if (id.role === 'proxy') {
      const requester = str(req?.requester, 'requester');
      const rec = await users.getUser(this.backend, requester);
      if (!rec?.roles.includes('admin')) {
        await this.audit({ type: AuditType.accessDenied, user: requester, success: false, reason: 'audit log without the admin role', message: 'only admins may read the audit log' });
        throw new AccessDeniedError('only admins may read the audit log', { hint: 'Ask an admin for the admin role' });
      }
    }
    const since = req.since ? new Date(req.since) : undefined;
    if (since && Number.isNaN(since.getTime())) throw new ValidationError('since must be a time');
    const { requester: _r, ...query } = req;
    return searchAudit(this.backend, { ...query, since });
  }

  // ---- nodes, roles and the access decision (issue 3) ----

  private get accessContext(): AccessContext {
    return { backend: this.backend, clusterName: this.clusterName, audit: (e: Omit<AuditEvent, 'time'>) => this.audit(e) };
  }

  /** Signs a node's host certificate (a year; `nodes renew` makes a new one) and says what sshd needs. */
  private async hostCertFor(rec: nodes.NodeRecord): Promise<AddNodeResult> {
    const key = parseAuthorizedKey(rec.hostPublicKey);
    const principals = nodes.hostPrincipals(rec.name, rec.addr, this.clusterName);
    const cert = await signWithCa(this.backend, 'host', {
      subjectPublicKey: key.wire, keyId: `node:${rec.name}`, principals, ttlMs: NODE_CERT_TTL, now: this.clock.now(),
    });
    return { node: nodes.nodeInfo(rec), hostCertificate: formatCertificate(cert, rec.name), userCaKeys: [await sshCaPublicKey(this.backend, 'user')] };
  }

  protected async do_addNode(id: Identity, req: { name: string; addr: string; labels: Record<string, string>; hostPublicKey: string }): Promise<AddNodeResult> {
    const name = nodes.checkNodeName(req.name);
    const addr = nodes.normaliseAddr(str(req.addr, 'addr'));
    const labels = nodes.checkLabels(req.labels ?? {});
    let hostPublicKey: string;
    try {
      const k = parseAuthorizedKey(str(req.hostPublicKey, 'hostPublicKey'));
      if (!/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa)$/.test(k.type)) throw new Error(k.type);
      hostPublicKey = formatAuthorizedKey(k.wire);
    } catch {
      throw new ValidationError('the host key must be an OpenSSH public key (ed25519, ecdsa or rsa), not a certificate or a private key', {
        hint: 'Pass the node\'s /etc/ssh/ssh_host_ed25519_key.pub',
      });
    }
    if (await nodes.getNode(this.backend, name)) throw nodes.nodeExists(name);
    const rec: nodes.NodeRecord = { name, addr, labels, hostPublicKey, createdAt: this.clock.now().toISOString() };
    const result = await this.hostCertFor(rec);
    await nodes.createNode(this.backend, rec);
    await this.audit({ type: AuditType.nodeAdded, user: id.name, success: true, node: name, addr, labels, principals: nodes.hostPrincipals(name, addr, this.clusterName) });
    return result;
  }

  protected async do_listNodes(id: Identity, req: { user?: string; labels?: Record<string, string>; search?: string }): Promise<NodeInfo[]> {
    // A proxy lists on behalf of a user, never the whole registry.
    if (id.role === 'proxy' && typeof req.user !== 'string') throw new ValidationError('a proxy must name the user whose nodes it lists');
    return listNodesFor(this.accessContext, req);
  }

  protected async do_updateNode(id: Identity, req: { name: string; labels: Record<string, string> }): Promise<NodeInfo> {
    const labels = nodes.checkLabels(req.labels ?? {});
    const next = await nodes.modifyNode(this.backend, str(req.name, 'name'), (n) => ({ ...n, labels }));
    await this.audit({ type: AuditType.nodeUpdated, user: id.name, success: true, node: next.name, labels });
    return nodes.nodeInfo(next);
  }

  protected async do_removeNode(id: Identity, req: { name: string }): Promise<void> {
    const name = str(req.name, 'name');
    await nodes.deleteNode(this.backend, name);
    await this.audit({ type: AuditType.nodeRemoved, user: id.name, success: true, node: name.toLowerCase() });
  }

  protected async do_renewNode(id: Identity, req: { name: string }): Promise<AddNodeResult> {
    const rec = await nodes.getNode(this.backend, str(req.name, 'name'));
    if (!rec) throw nodes.unknownNode(req.name);
    const result = await this.hostCertFor(rec);
    await this.audit({ type: AuditType.nodeRenewed, user: id.name, success: true, node: rec.name });
    return result;
  }

  protected async do_upsertRole(id: Identity, req: RoleSpec): Promise<RoleSpec> {
    const role = await roleStore.putRole(this.backend, req);
    await this.audit({ type: AuditType.roleChanged, user: id.name, success: true, role: role.name, logins: role.logins, node_labels: role.node_labels });
    return role;
  }

  protected async do_listRoles(): Promise<RoleSpec[]> {
    return roleStore.listRoles(this.backend);
  }

  protected async do_deleteRole(id: Identity, req: { name: string }): Promise<void> {
    const name = str(req.name, 'name');
    if (roleStore.BUILTIN_ROLES.some((r) => r.name === name)) return roleStore.removeRole(this.backend, name);
    const holders = (await users.listUsers(this.backend)).filter((u) => u.roles.includes(name)).map((u) => u.name);
    if (holders.length > 0) {
      throw new ConflictError(`role "${name}" is still held by ${holders.join(', ')}`, {
        hint: `Remove ${holders.length === 1 ? 'that user' : 'those users'} first (postern users rm NAME), then remove the role`,
      });
    }
    await roleStore.removeRole(this.backend, name);
    await this.audit({ type: AuditType.roleRemoved, user: id.name, success: true, role: name });
  }

  protected async do_authorizeSsh(_id: Identity, req: AccessRequest): Promise<AccessDecision> {
    return authorizeSsh(this.accessContext, req);
  }

  // ---- session recordings (recordings.ts): proxies write, users read through a proxy ----

  protected async do_startRecording(id: Identity, req: StartRecordingRequest): Promise<StartRecordingResult> {
    const settings = await getSettings(this.backend);
    const rec = await recordings.startRecording(this.backend, id.name, req, this.clock.now(), settings.record_input);
    await this.audit({
      type: AuditType.recordingStart, user: rec.user, addr: rec.clientAddr, success: true, node: rec.node, login: rec.login,
      kind: rec.kind, ...(rec.command !== undefined ? { command: rec.command } : {}), recording: rec.id,
      ...(rec.sessionId ? { sessionId: rec.sessionId } : {}), proxy: id.name,
    });
    return { id: rec.id, recordInput: rec.recordInput };
  }

  protected async do_appendRecording(id: Identity, req: AppendRecordingRequest): Promise<AppendRecordingResult> {
    return (await recordings.appendRecording(this.backend, id.name, req, this.clock.now())).result;
  }

  protected async do_finishRecording(id: Identity, req: FinishRecordingRequest): Promise<RecordingMeta> {
    const { record: rec, changed } = await recordings.finishRecording(this.backend, id.name, req, this.clock.now());
    if (changed) {
      await this.audit({
        type: AuditType.recordingEnd, user: rec.user, addr: rec.clientAddr, success: true, node: rec.node, login: rec.login,
        kind: rec.kind, recording: rec.id, durationSec: rec.durationSec, bytes: rec.bytes,
        ...(rec.exitCode !== undefined ? { exitCode: rec.exitCode } : {}), ...(rec.lostBytes ? { lostBytes: rec.lostBytes } : {}),
      });
    }
    return recordings.recordingMeta(rec);
  }

  /**
   * Whose recordings a read may see: undefined for all (the admin identity without a user,
   * or a user holding the admin role), else that user's own. A proxy must name the user.
   */
  private async recordingViewer(id: Identity, user: unknown): Promise<string | undefined> {
    if (user === undefined && id.role === 'admin') return undefined;
    if (typeof user !== 'string' || user === '') throw new ValidationError(`a ${id.role} must name the user it reads recordings for`);
    const rec = await users.getUser(this.backend, user);
    return rec?.roles.includes('admin') ? undefined : user;
  }

  /** The record a read asks for, once the reader may see it (a refusal is an audit event). */
  private async readableRecording(id: Identity, req: RecordingReadRequest, first: boolean): Promise<recordings.RecordingRecord> {
    if (typeof req !== 'object' || req === null) throw new ValidationError('a read needs the recording id');
    const rid = recordings.checkRecordingId(req.id);
    const only = await this.recordingViewer(id, req.user);
    const rec = await recordings.requireRecording(this.backend, rid);
    if (only !== undefined && rec.user !== only) {
      const message = `recording ${rid} is not yours: only the user it recorded and admins may see it`;
      await this.audit({ type: AuditType.accessDenied, user: only, success: false, recording: rid, reason: 'recording of another user', message });
      throw new AccessDeniedError(message, { hint: 'See the recordings you may play with:  postern recordings ls' });
    }
    if (first && typeof req.user === 'string') {
      await this.audit({ type: AuditType.recordingAccess, user: req.user, success: true, recording: rid, owner: rec.user, node: rec.node });
    }
    return rec;
  }

  protected async do_listRecordings(id: Identity, req: { user?: string; limit?: number }): Promise<RecordingMeta[]> {
    const only = await this.recordingViewer(id, req.user);
    if (req.limit !== undefined && (typeof req.limit !== 'number' || !Number.isInteger(req.limit) || req.limit < 1)) throw new ValidationError('limit must be a whole number above 0');
    const all = (await recordings.listRecordings(this.backend)).filter((r) => only === undefined || r.user === only);
    return all.slice(0, req.limit ?? all.length).map(recordings.recordingMeta);
  }

  protected async do_readRecording(id: Identity, req: RecordingReadRequest & { afterSeq?: number; maxBytes?: number }): Promise<{ meta: RecordingMeta; header: CastHeader; chunks: RecordingChunk[]; more: boolean }> {
    const after = req?.afterSeq;
    if (after !== undefined && (typeof after !== 'number' || !Number.isInteger(after) || after < 0)) throw new ValidationError('afterSeq must be a whole number, 0 or more');
    const max = req?.maxBytes;
    if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 64 << 20)) throw new ValidationError('maxBytes must be a whole number from 1 to 64 MiB');
    const rec = await this.readableRecording(id, req, after === undefined);
    const meta = recordings.recordingMeta(rec);
    const page = await recordings.readChunks(this.backend, rec.id, after, max);
    return { meta, header: castHeader(meta), ...page };
  }

  protected async do_getRecording(id: Identity, req: RecordingReadRequest): Promise<{ meta: RecordingMeta; header: CastHeader; events: string }> {
    const rec = await this.readableRecording(id, req, true);
    const meta = recordings.recordingMeta(rec);
    const parts: string[] = [];
    let after: number | undefined;
    for (;;) {
      const page = await recordings.readChunks(this.backend, rec.id, after);
      for (const c of page.chunks) parts.push(c.events);
      if (!page.more || page.chunks.length === 0) break;
      after = page.chunks[page.chunks.length - 1].seq;
    }
    return { meta, header: castHeader(meta), events: parts.join('') };
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

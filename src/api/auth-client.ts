/**
 * AuthClient: everything the proxy and the admin commands may ask of auth, the contract of
 * the Auth API. Auth implements it twice: in the same process (auth-server.ts's
 * localAuthClient) and over mutual TLS (auth/remote-client.ts). The proxy only ever sees
 * this interface, or the narrow parts of it in proxy-auth.ts, never auth's storage.
 */
import type {
  SshLoginRequest, InviteInfo, AcceptInviteRequest, AcceptInviteResponse, UserInfo, InviteResult, TokenResult,
  NodeInfo, RecordingMeta, ActiveSession, JoinMode, WebSessionInfo,
} from './types.ts';
import type { CastHeader } from './asciicast.ts';
import type { CreateLockRequest, LockInfo } from './locks.ts';
import type { AuditEvent, AuditQuery, NewAuditEvent } from './audit.ts';
import type {
  Identity, ClusterInfo, ClusterSettings, SshLoginResult, ProxyHeartbeat, CreateUserRequest, RoleSpec, AccessRequest, AccessDecision, AddNodeResult,
  StartRecordingRequest, StartRecordingResult, AppendRecordingRequest, AppendRecordingResult, FinishRecordingRequest, RecordingChunk, RecordingReadRequest,
  CreateWebSessionRequest, UpdateUserRequest, TokenInfo, ProxyInfo,
} from './auth-types.ts';

/** The calls, by name; each takes one argument object. */
export interface AuthClient {
  ping(): Promise<ClusterInfo>;
  loginSsh(req: SshLoginRequest & { clientAddr: string }): Promise<SshLoginResult>;
  getInvite(req: { token: string }): Promise<InviteInfo>;
  acceptInvite(req: AcceptInviteRequest & { token: string; clientAddr: string }): Promise<AcceptInviteResponse>;
  caKeys(req: { type: 'user' | 'host' }): Promise<string[]>;
  signHostCert(req: { publicKey: string; principals: string[]; ttlMs: number }): Promise<string>;
  signTlsCert(req: { publicKeyPem: string; hosts: string[] }): Promise<{ certPem: string; caPem: string }>;
  heartbeatProxy(req: ProxyHeartbeat): Promise<void>;
  /** A joined proxy trades its identity for a fresh one (a new key, a year more); the old certificate is refused from then on. */
  renewProxyIdentity(req: { publicKeyPem: string }): Promise<{ certPem: string; caPem: string }>;
  emitAudit(req: NewAuditEvent): Promise<void>;
  // Admin calls.
  createUser(req: CreateUserRequest): Promise<InviteResult>;
  listUsers(): Promise<UserInfo[]>;
  deleteUser(req: { name: string }): Promise<void>;
  resetUser(req: { name: string; inviteTtlMs: number }): Promise<InviteResult>;
  createToken(req: { type: 'proxy'; ttlMs: number }): Promise<TokenResult>;
  /** Changes a user's roles and logins in place (no new invite): `set*` replaces, `add*`/`remove*` edit. */
  updateUser(req: UpdateUserRequest): Promise<UserInfo>;
  /** Clears a user's failed logins and lockout; the password and second factor stay. */
  unlockUser(req: { name: string }): Promise<UserInfo>;
  /** The join tokens that have not expired, by id (a token is stored only as its hash). */
  listTokens(): Promise<TokenInfo[]>;
  /** Removes a join token, named by its id (or by the token itself). */
  deleteToken(req: { id: string }): Promise<void>;
  /** The proxies auth knows: their heartbeats and joined identities (revoked ones too). */
  listProxies(): Promise<ProxyInfo[]>;
  /** Forgets a proxy and revokes its joined identity: every later call it makes is refused (401). */
  removeProxy(req: { name: string }): Promise<void>;
  getSettings(): Promise<ClusterSettings>;
  updateSettings(req: Partial<ClusterSettings>): Promise<ClusterSettings>;
  /** The audit log; a proxy must name the `requester`, who must hold the admin role. */
  searchAudit(req: AuditQuery): Promise<AuditEvent[]>;
  // Nodes and roles.
  addNode(req: { name: string; addr: string; labels: Record<string, string>; hostPublicKey: string }): Promise<AddNodeResult>;
  listNodes(req: { user?: string; labels?: Record<string, string>; search?: string }): Promise<NodeInfo[]>;
  updateNode(req: { name: string; labels: Record<string, string> }): Promise<NodeInfo>;
  removeNode(req: { name: string }): Promise<void>;
  renewNode(req: { name: string }): Promise<AddNodeResult>;
  upsertRole(req: RoleSpec): Promise<RoleSpec>;
  listRoles(): Promise<RoleSpec[]>;
  deleteRole(req: { name: string }): Promise<void>;
  authorizeSsh(req: AccessRequest): Promise<AccessDecision>;
  // Session recordings (src/auth/recordings.ts): the proxy writes, users read through it.
  startRecording(req: StartRecordingRequest): Promise<StartRecordingResult>;
  appendRecording(req: AppendRecordingRequest): Promise<AppendRecordingResult>;
  finishRecording(req: FinishRecordingRequest): Promise<RecordingMeta>;
  /** Newest first; at most `limit`. */
  listRecordings(req: { user?: string; limit?: number }): Promise<RecordingMeta[]>;
  /** The whole recording: `JSON.stringify(header) + '\n' + events` is the .cast file. */
  getRecording(req: RecordingReadRequest): Promise<{ meta: RecordingMeta; header: CastHeader; events: string }>;
  /** A page of chunks after `afterSeq` (from the first without), about `maxBytes` (default 4 MiB); `more` while stored chunks remain. */
  readRecording(req: RecordingReadRequest & { afterSeq?: number; maxBytes?: number }): Promise<{ meta: RecordingMeta; header: CastHeader; chunks: RecordingChunk[]; more: boolean }>;
  /** Web sessions: created by a web login; get throws ERR_POSTERN_SESSION_EXPIRED (401) for an unknown, expired or revoked id. */
  createWebSession(req: CreateWebSessionRequest): Promise<WebSessionInfo & { sessionId: string }>;
  getWebSession(req: { sessionId: string }): Promise<WebSessionInfo>;
  deleteWebSession(req: { sessionId: string; clientAddr?: string }): Promise<void>;
  /**
   * The ssh-agent (PROTOCOL.agent) of a web session's key: `message` is one request
   * without its length prefix, base64; the answer likewise. Serves REQUEST_IDENTITIES (the
   * certificate and the plain key) and SIGN_REQUEST for that key; anything else is FAILURE.
   */
  webSessionAgent(req: { sessionId: string; message: string }): Promise<{ message: string }>;
  /** Account changes from the web UI; both need the current password and a TOTP code (when the cluster uses TOTP). */
  changePassword(req: { sessionId: string; currentPassword: string; otp?: string; newPassword: string; clientAddr: string }): Promise<void>;
  /** Re-enrolling TOTP: begin proposes a new secret; finish with a code of it replaces the old one. */
  beginTotpEnrol(req: { sessionId: string; currentPassword: string; otp?: string; clientAddr: string }): Promise<{ enrolId: string; totpSecret: string; otpauthUri: string }>;
  finishTotpEnrol(req: { sessionId: string; enrolId: string; otp: string; clientAddr: string }): Promise<void>;
  /** Live sessions: a proxy upserts each one it carries every 30 s (kept 90 s) and ends it when it ends. */
  upsertActiveSession(req: ActiveSession): Promise<void>;
  endActiveSession(req: { id: string }): Promise<void>;
  /** A proxy process carrying live sessions says it is alive (every 2 s); its sessions drop from lists 10 s after its last word. */
  heartbeatSessions(req: { instance: string }): Promise<void>;
  /** The live sessions `user` may see (their own and those their roles may join); all for the admin identity without `user`. */
  listActiveSessions(req: { user?: string }): Promise<ActiveSession[]>;
  /**
   * May `user` join session `id` in `mode`? Returns the session; throws 404, 403 (no join rule,
   * or a lock on the user, their roles, the session's login or node: the lock's message) or
   * 401 (`account`, the joiner's certificate's generation, is no longer the account's), audited
   * either way as session.join.
   */
  authorizeJoin(req: { user: string; sessionId: string; mode: JoinMode; clientAddr: string; account?: string }): Promise<ActiveSession>;
  /**
   * Is the certificate's account (its user and the generation in its `postern-account@postern.dev`
   * extension, '' for none) still the live account? False after `users reset` and `users rm`;
   * every proxy surface asks before it lets a certificate in (kept a few seconds there).
   */
  checkAccount(req: AccountCheck): Promise<AccountCheckResult>;
  /** Locks (api/locks.ts): a user, a role, a login or a node stopped, with a reason and an optional TTL; audited. */
  createLock(req: CreateLockRequest): Promise<LockInfo>;
  /** The locks in force, oldest first. */
  listLocks(): Promise<LockInfo[]>;
  /** Removes a lock by its id (or a unique prefix of it); returns it. */
  deleteLock(req: { id: string }): Promise<LockInfo>;
  /**
   * The nonce of a signed web API request the proxy verified, single-use across the cluster:
   * stored until `expiresAt` (the end of the request's signature window, unix ms). Throws
   * 401 ERR_POSTERN_REQUEST_AUTH for a nonce already used (on any proxy, before or after a
   * restart), 429 when the user or the source address sends more than the cluster allows.
   */
  claimNonce(req: { user: string; nonce: string; clientAddr: string; expiresAt: number }): Promise<void>;
  /**
   * One admin call (web-admin.ts's WEB_ADMIN_CALLS) for the user of a web session: auth checks
   * that the user holds the admin role now, then runs it as that user, audited as the CLI's are.
   */
  webAdmin(req: { sessionId: string; clientAddr?: string; call: string; arg?: unknown }): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * checkAccount's argument: the certificate's user and account generation, or a web
 * session's id (its account is auth's); with `login`/`principals`/`node` also the locks on
 * them, for a live connection to a node (proxy/live-conns.ts).
 */
export interface AccountCheck {
  user: string;
  account?: string;
  sessionId?: string;
  login?: string;
  principals?: string[];
  node?: string;
}

/** checkAccount's answer; `locked` when a lock (not a reset or removal) is why. */
export interface AccountCheckResult {
  valid: boolean;
  reason?: string;
  locked?: boolean;
}

/** The name of a call (every method but `close`). */
export type AuthCallName = Exclude<keyof AuthClient, 'close'>;

/** The names of the calls, and who may make each. */
export const AUTH_CALLS: Record<AuthCallName, ReadonlyArray<Identity['role']>> = {
  ping: ['proxy', 'admin'],
  loginSsh: ['proxy'],
  getInvite: ['proxy', 'admin'],
  acceptInvite: ['proxy'],
  caKeys: ['proxy', 'admin'],
  signHostCert: ['proxy', 'admin'],
  signTlsCert: ['proxy', 'admin'],
  heartbeatProxy: ['proxy'],
  renewProxyIdentity: ['proxy'],
  emitAudit: ['proxy'],
  createUser: ['admin'],
  listUsers: ['admin'],
  deleteUser: ['admin'],
  resetUser: ['admin'],
  createToken: ['admin'],
  updateUser: ['admin'],
  unlockUser: ['admin'],
  listTokens: ['admin'],
  deleteToken: ['admin'],
  listProxies: ['admin'],
  removeProxy: ['admin'],
  getSettings: ['admin'],
  updateSettings: ['admin'],
  searchAudit: ['admin', 'proxy'],
  addNode: ['admin'],
  listNodes: ['proxy', 'admin'],
  updateNode: ['admin'],
  removeNode: ['admin'],
  renewNode: ['admin'],
  upsertRole: ['admin'],
  listRoles: ['admin', 'proxy'],
  deleteRole: ['admin'],
  authorizeSsh: ['proxy'],
  startRecording: ['proxy'],
  appendRecording: ['proxy'],
  finishRecording: ['proxy'],
  listRecordings: ['proxy', 'admin'],
  getRecording: ['proxy', 'admin'],
  readRecording: ['proxy', 'admin'],
  createWebSession: ['proxy'],
  getWebSession: ['proxy'],
  deleteWebSession: ['proxy'],
  webSessionAgent: ['proxy'],
  changePassword: ['proxy'],
  beginTotpEnrol: ['proxy'],
  finishTotpEnrol: ['proxy'],
  upsertActiveSession: ['proxy'],
  endActiveSession: ['proxy'],
  heartbeatSessions: ['proxy'],
  listActiveSessions: ['proxy', 'admin'],
  authorizeJoin: ['proxy'],
  checkAccount: ['proxy'],
  claimNonce: ['proxy'],
  createLock: ['admin'],
  listLocks: ['admin', 'proxy'],
  deleteLock: ['admin'],
  webAdmin: ['proxy'],
};

/**
 * AuthClient: everything the proxy and the admin commands may ask of auth. Two
 * implementations: LocalAuthClient (same process) and RemoteAuthClient (the Auth API over
 * mutual TLS). The proxy only ever sees this interface, never auth's storage.
 */
import type {
  SshLoginRequest, SshLoginResponse, InviteInfo, AcceptInviteRequest, AcceptInviteResponse, UserInfo, InviteResult, TokenResult, SecondFactor,
} from '../api/types.ts';
import type { NodeInfo, RecordingMeta, RecordingKind, ActiveSession, JoinMode, JoinRule, WebSessionInfo } from '../api/types.ts';
export type { ActiveSession, JoinMode, JoinRule, WebSessionInfo } from '../api/types.ts';
import type { CastHeader } from '../api/asciicast.ts';
import type { ClusterSettings } from './settings.ts';
import type { AuditEvent, AuditQuery } from './audit.ts';

/** Who is calling auth, from a client certificate (remote) or fixed (local). */
export interface Identity {
  role: 'admin' | 'proxy';
  name: string;
}

/** Facts about the cluster any caller may know. */
export interface ClusterInfo {
  clusterName: string;
  secondFactor: SecondFactor;
  userCaKeys: string[];
  hostCaKeys: string[];
  serverVersion: string;
  /** The cluster's `session_recording`: in `proxy` the proxy terminates and records SSH sessions. */
  sessionRecording: 'off' | 'proxy';
}

/** What auth returns for a successful login; the proxy adds its own SSH address and host key. */
export type SshLoginResult = Omit<SshLoginResponse, 'proxySshHostKey' | 'proxySshAddr'> & { ttlCapped: boolean };

/** Where a proxy can be reached, which it reports to auth. */
export interface ProxyHeartbeat {
  name: string;
  webPublicAddr: string;
  sshPublicAddr: string;
}

/** Arguments of `users add`. */
export interface CreateUserRequest {
  name: string;
  logins: string[];
  roles: string[];
  inviteTtlMs: number;
}

/** A registered node: an OpenSSH server the proxy can reach (the type lives in the API contract). */
export type { NodeInfo } from '../api/types.ts';

/** A role: which logins, on which nodes (by label). `{{internal.logins}}` stands for the user's own logins. */
export interface RoleSpec {
  name: string;
  logins: string[];
  /** Label name to allowed values; `'*': ['*']` is every node. All names must match. */
  node_labels: Record<string, string[]>;
  /** Whose live sessions holders of this role may join, and how (none when absent). */
  join_sessions?: JoinRule[];
  /** Built-in roles cannot be changed or removed. */
  builtin?: boolean;
}

/** What the proxy asks before it dials anything for a user. */
export interface AccessRequest {
  /** The Postern user (the certificate's key id), already verified by the proxy. */
  user: string;
  /** The certificate's principals. */
  principals: string[];
  /** The login the user will use on the node, when the proxy knows it (subsystem, web, postern ssh). */
  login?: string;
  /** What the user typed: a node name, NAME.<cluster>, a label selector k=v[,k=v], or a host. */
  target: string;
  port?: number;
  /** The addresses the proxy resolved `target` to, when auth asked for them (CIDR rules). */
  resolved?: string[];
  clientAddr: string;
  via: 'subsystem' | 'direct-tcpip' | 'web' | 'recording' | 'tunnel';
}

/** Auth's answer: dial this. A denial is an error (and an audit event). */
export type AccessDecision =
  | { kind: 'dial'; host: string; port: number; node?: NodeInfo }
  /** Unregistered host, CIDR rules exist: resolve `target` and ask again with `resolved`. */
  | { kind: 'resolve' };

/** What `nodes add` returns. */
export interface AddNodeResult {
  node: NodeInfo;
  /** The host certificate for the node's key, an authorized_keys-style line. */
  hostCertificate: string;
  /** The user CA (for the node's TrustedUserCAKeys). */
  userCaKeys: string[];
}

/** What the proxy says when a session it records starts (`startRecording`). */
export interface StartRecordingRequest {
  /** The Postern user, already verified by the proxy. */
  user: string;
  /** The node as the user named it. */
  node: string;
  /** The OS login on the node. */
  login: string;
  /** The terminal size at the start; 80x24 when there is no terminal. */
  width?: number;
  height?: number;
  kind: RecordingKind;
  /** The command line of an exec session (required for `exec`). */
  command?: string;
  /** TERM of the session's terminal (default xterm). */
  term?: string;
  /** ISO time; auth's clock when absent. */
  startedAt?: string;
  clientAddr?: string;
  /** The live session this recording belongs to (for join). */
  sessionId?: string;
}

/** The new recording: its id, and whether to record input (the cluster's `record_input` now). */
export interface StartRecordingResult {
  id: string;
  recordInput: boolean;
}

/**
 * The next chunk of a recording: `seq` counts from 0 with no gaps; `events` are asciicast v2
 * event lines (NDJSON, at most 1 MiB). Re-sending the last stored chunk is answered again.
 */
export interface AppendRecordingRequest {
  id: string;
  seq: number;
  events: string;
}

/** A stored chunk: `duplicate` when it was stored before (a re-send). */
export interface AppendRecordingResult {
  seq: number;
  nextSeq: number;
  duplicate: boolean;
}

/** The end of a recorded session. */
export interface FinishRecordingRequest {
  id: string;
  /** ISO time; auth's clock when absent. */
  endedAt?: string;
  exitCode?: number;
  /** Bytes the proxy could not deliver (see Recorder). */
  lostBytes?: number;
}

/** One stored chunk: its number and its event lines. */
export interface RecordingChunk {
  seq: number;
  events: string;
}

/**
 * Reads of recordings. `user` is the user a proxy acts for (required from a proxy): they
 * see their own recordings, or all of them when they hold the `admin` role. The admin
 * identity without `user` sees all.
 */
export interface RecordingReadRequest {
  id: string;
  user?: string;
}

/** What `createWebSession` takes: the same checks (password, TOTP, lockout, audit) as `loginSsh`. */
export interface CreateWebSessionRequest {
  user: string;
  password: string;
  otp?: string;
  clientAddr: string;
}

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
  emitAudit(req: Omit<AuditEvent, 'time'>): Promise<void>;
  // Admin calls.
  createUser(req: CreateUserRequest): Promise<InviteResult>;
  listUsers(): Promise<UserInfo[]>;
  deleteUser(req: { name: string }): Promise<void>;
  resetUser(req: { name: string; inviteTtlMs: number }): Promise<InviteResult>;
  createToken(req: { type: 'proxy'; ttlMs: number }): Promise<TokenResult>;
  getSettings(): Promise<ClusterSettings>;
  updateSettings(req: Partial<ClusterSettings>): Promise<ClusterSettings>;
  /** The audit log; a proxy must name the `requester`, who must hold the admin role. */
  searchAudit(req: Omit<AuditQuery, 'since'> & { since?: string; requester?: string }): Promise<AuditEvent[]>;
  // Nodes and roles (issue 3).
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
  /** The live sessions `user` may see (their own and those their roles may join); all for the admin identity without `user`. */
  listActiveSessions(req: { user?: string }): Promise<ActiveSession[]>;
  /** May `user` join session `id` in `mode`? Returns the session; throws 404 / 403 (audited either way as session.join). */
  authorizeJoin(req: { user: string; sessionId: string; mode: JoinMode; clientAddr: string }): Promise<ActiveSession>;
  close(): Promise<void>;
}

/** The names of the calls, and who may make each. */
export const AUTH_CALLS: Record<Exclude<keyof AuthClient, 'close'>, ReadonlyArray<Identity['role']>> = {
  ping: ['proxy', 'admin'],
  loginSsh: ['proxy'],
  getInvite: ['proxy', 'admin'],
  acceptInvite: ['proxy'],
  caKeys: ['proxy', 'admin'],
  signHostCert: ['proxy', 'admin'],
  signTlsCert: ['proxy', 'admin'],
  heartbeatProxy: ['proxy'],
  emitAudit: ['proxy'],
  createUser: ['admin'],
  listUsers: ['admin'],
  deleteUser: ['admin'],
  resetUser: ['admin'],
  createToken: ['admin'],
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
  listActiveSessions: ['proxy', 'admin'],
  authorizeJoin: ['proxy'],
};

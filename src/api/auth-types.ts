/**
 * The types that cross the Auth API (`AuthClient`, auth-client.ts) besides those the web
 * API shares (types.ts): callers' identities, cluster facts and settings, roles, the
 * access decision, and the requests of recordings and web sessions.
 */
import type { NodeInfo, RecordingKind, SecondFactor, SshLoginResponse, JoinRule } from './types.ts';

/** Who is calling auth, from a client certificate (remote) or fixed (local). */
export interface Identity {
  role: 'admin' | 'proxy';
  name: string;
  /** The serial of the client certificate the caller presented (Auth API over mTLS only). */
  serial?: string;
}

/** A proxy as `postern proxies ls` shows it: its last heartbeat and its identity. */
export interface ProxyInfo {
  name: string;
  webPublicAddr?: string;
  sshPublicAddr?: string;
  lastSeen?: string;
  /** When it joined with a token (absent for a proxy inside an auth server's process). */
  joinedAt?: string;
  revokedAt?: string;
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

/** Every cluster-wide setting; auth keeps them, with defaults for what was never set. */
export interface ClusterSettings {
  second_factor: SecondFactor;
  /** The longest certificate a login may get, in ms. */
  max_session_ttl: number;
  /** Failed logins within `lockout_window` that lock a user, and for how long (ms). */
  lockout_attempts: number;
  lockout_window: number;
  lockout_duration: number;
  /** Login and sign-up attempts allowed per minute (and at once) from one source address, and for one user name; 0 is no limit. */
  login_rate_per_source: number;
  login_rate_per_user: number;
  /** Signed web API requests (the CLI's ls, tunnel, …) allowed per minute (and at once) from one source address, and for one user; 0 is no limit. */
  signed_rate_per_source: number;
  signed_rate_per_user: number;
  session_recording: 'off' | 'proxy';
  /** Whether recordings keep what users type ("i" events); off by default, as keystrokes hold passwords. */
  record_input: boolean;
  /** Host globs and CIDRs the proxy may dial without a registered node. */
  allow_unregistered: string[];
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

/**
 * `updateUser`: what changes. `setRoles`/`setLogins` replace the list; `add*` and `remove*`
 * edit it (applied after a `set*`). At least one field; the result must keep a role and a login.
 */
export interface UpdateUserRequest {
  name: string;
  setRoles?: string[];
  addRoles?: string[];
  removeRoles?: string[];
  setLogins?: string[];
  addLogins?: string[];
  removeLogins?: string[];
}

/** A join token as `listTokens` shows it: an id (a prefix of the token's hash), never the token. */
export interface TokenInfo {
  id: string;
  type: 'proxy';
  createdAt: string;
  expiresAt: string;
}

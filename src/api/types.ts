/**
 * The HTTP contract between the CLI, the proxy's web API and the Auth API: request and
 * response bodies. The proxy's routes are under /webapi; auth's under /v1.
 */

/** Default ports, as Teleport's. */
export const DEFAULT_WEB_PORT = 3080;
/** The proxy's SSH listener. */
export const DEFAULT_SSH_PORT = 3023;
/** The Auth API. */
export const DEFAULT_AUTH_PORT = 3025;
/** The proxy's peer listener, where other proxies relay joins of its live sessions (as Teleport's proxy peering). */
export const DEFAULT_PEER_PORT = 3021;

/** Second-factor policy of the cluster. */
export type SecondFactor = 'otp' | 'off';

/** What `GET /webapi/ping` answers: enough for a client to start a login. */
export interface PingResponse {
  clusterName: string;
  secondFactor: SecondFactor;
  serverVersion: string;
  proxy: { sshPublicAddr: string; webPublicAddr: string };
}

/** `POST /webapi/ssh/certs`: credentials and a public key for a user certificate. */
export interface SshLoginRequest {
  user: string;
  password: string;
  otp?: string;
  /** The client's public key, an authorized_keys line. */
  publicKey: string;
  /** Requested lifetime in milliseconds; auth caps it. */
  ttlMs?: number;
}

/** The answer to a login: a certificate and what the client must trust. */
export interface SshLoginResponse {
  clusterName: string;
  user: string;
  logins: string[];
  /** The signed certificate, an authorized_keys-style line. */
  certificate: string;
  validAfter: string;
  validBefore: string;
  /** Host CA public keys (authorized_keys lines) for `@cert-authority`. */
  hostCaKeys: string[];
  /** The proxy's SSH host key (authorized_keys line) and public SSH address. */
  proxySshHostKey: string;
  proxySshAddr: string;
  /** Set when the requested TTL was cut to the cluster's maximum. */
  ttlCapped?: boolean;
}

/** A registered node as users see it (`GET /webapi/nodes`, `postern ls --format json`). */
export interface NodeInfo {
  name: string;
  /** HOST:PORT the proxy dials. */
  addr: string;
  labels: Record<string, string>;
}

/** `GET /webapi/invites/:token`: what a sign-up needs to know. */
export interface InviteInfo {
  user: string;
  expiresAt: string;
  secondFactor: SecondFactor;
  /** A fresh TOTP secret (base32) auth proposes; the user may bring their own. */
  totpSecret?: string;
  /** The `otpauth://` URI for that secret. */
  otpauthUri?: string;
}

/** `POST /webapi/invites/:token`: the new password and the second factor. */
export interface AcceptInviteRequest {
  password: string;
  totpSecret?: string;
  otp?: string;
}

/** The answer to an accepted invite. */
export interface AcceptInviteResponse {
  user: string;
}

/** An API error body: the same fields a PosternError carries. */
export interface ErrorBody {
  /** `retryAfter`: seconds to wait, with ERR_POSTERN_RATE_LIMITED (429; also the Retry-After header). */
  error: { code: string; message: string; hint?: string; lockedUntil?: string; retryAfter?: number };
}

/** A user as admins see it (no secrets). */
export interface UserInfo {
  name: string;
  logins: string[];
  roles: string[];
  status: 'invited' | 'active' | 'locked';
  createdAt: string;
  lockedUntil?: string;
}

/** What `users add` and `users reset` return. */
export interface InviteResult {
  user: string;
  inviteUrl: string;
  expiresAt: string;
}

/** A join token as `tokens add` prints it. */
export interface TokenResult {
  token: string;
  type: 'proxy';
  expiresAt: string;
}

/** What a recording holds: an interactive shell, or one command (`ssh node cmd`). */
export type RecordingKind = 'shell' | 'exec';

/**
 * `complete`: the proxy finished it. `incomplete`: it was never finished, either because
 * the session is still running or because the proxy that wrote it died; it then holds
 * everything up to the last chunk the proxy sent.
 */
export type RecordingStatus = 'complete' | 'incomplete';

/** A session recording as users see it (`GET /webapi/recordings`, `postern recordings ls --format json`). */
export interface RecordingMeta {
  /** Random and URL-safe (a UUID). */
  id: string;
  /** The Postern user whose session it is. */
  user: string;
  /** The node as the user named it (registered name or host). */
  node: string;
  /** The OS login on the node. */
  login: string;
  kind: RecordingKind;
  /** The command line of an exec session. */
  command?: string;
  startedAt: string;
  /** When the proxy finished it; absent while incomplete. */
  endedAt?: string;
  /** Seconds from start to end, or to the last recorded event while incomplete. */
  durationSec: number;
  /** The terminal size at the start. */
  width: number;
  height: number;
  /** TERM of the session's terminal. */
  term: string;
  /** UTF-8 bytes of the stored events. */
  bytes: number;
  /** How many chunks the proxy stored. */
  chunks: number;
  status: RecordingStatus;
  /** The remote exit status, when the session reported one. */
  exitCode?: number;
  /** Bytes the proxy could not deliver to auth (each gap is also a marker event in the stream). */
  lostBytes?: number;
  /** Whether keystrokes were recorded (the cluster's `record_input` at the start). */
  recordInput: boolean;
  /** Where the user connected from. */
  clientAddr?: string;
  /** The live session this recording belongs to, when the proxy gave one. */
  sessionId?: string;
  /** When auth last stored a chunk (or the start): tells a live session from a dead one. */
  updatedAt: string;
}

/** How a participant takes part in a live session: observers only watch, peers also type. */
export type JoinMode = 'observer' | 'peer';

/** One join permission: sessions of users holding any of `roles` ('*': any user), in these modes. */
export interface JoinRule {
  roles: string[];
  modes: JoinMode[];
}

/** A live session a proxy carries (a web terminal or a recording-mode SSH session). */
export interface ActiveSession {
  /** Random, url-safe; the same id as the live session's recording's `sessionId`. */
  id: string;
  kind: 'web' | 'ssh';
  user: string;
  node: string;
  login: string;
  startedAt: string;
  /** The proxy carrying it (its heartbeat name) and where users reach that proxy. */
  proxy: string;
  proxyWebAddr?: string;
  proxySshAddr?: string;
  /** Where other proxies reach the carrying proxy to relay a join (mutual TLS, src/proxy/peer-relay.ts); absent when it takes none. */
  proxyPeerAddr?: string;
  /** The carrying proxy's process (random per start): the session is listed only while that process says it is alive. */
  proxyInstance?: string;
  recordingId?: string;
  /** The owner first; then who joined. */
  participants: Array<{ user: string; mode: 'owner' | JoinMode; joinedAt: string }>;
  /** The owner's terminal size now. */
  width?: number;
  height?: number;
}

/**
 * A web session: made by a login on the web UI. Auth keeps its SSH key pair and a
 * short-lived user certificate for it; the private key never leaves auth. The secret
 * `sessionId` (the cookie's value) is given out once, by `createWebSession`; auth stores
 * only its hash.
 */
export interface WebSessionInfo {
  user: string;
  roles: string[];
  logins: string[];
  /** Whether the user holds the admin role (the audit page). */
  isAdmin: boolean;
  /** Sent back by the browser in `x-csrf-token` on every state-changing request. */
  csrfToken: string;
  createdAt: string;
  expiresAt: string;
}

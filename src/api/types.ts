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
  error: { code: string; message: string; hint?: string; lockedUntil?: string };
}

/** Roles a user can have, built in. */
export type BuiltinRole = 'admin' | 'access';

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

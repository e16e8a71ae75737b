/**
 * AuthClient: everything the proxy and the admin commands may ask of auth. Two
 * implementations: LocalAuthClient (same process) and RemoteAuthClient (the Auth API over
 * mutual TLS). The proxy only ever sees this interface, never auth's storage.
 */
import type {
  SshLoginRequest, InviteInfo, AcceptInviteRequest, AcceptInviteResponse, UserInfo, InviteResult, TokenResult, SecondFactor,
} from '../api/types.ts';
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
}

/** What auth returns for a successful login (the proxy adds its own SSH details). */
export interface SshLoginResult {
  clusterName: string;
  user: string;
  logins: string[];
  certificate: string;
  validAfter: string;
  validBefore: string;
  hostCaKeys: string[];
  ttlCapped: boolean;
}

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
  searchAudit(req: Omit<AuditQuery, 'since'> & { since?: string }): Promise<AuditEvent[]>;
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
  searchAudit: ['admin'],
};

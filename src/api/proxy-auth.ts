/**
 * The parts of AuthClient each proxy component uses, by name. A component takes only its
 * part, so what it may ask of auth shows in its options, and a test can hand it a small
 * fake. The wider parts are built from the narrower ones, ending at `ProxyAuth`: all the
 * proxy asks of auth (no admin call of its own: the admin pages' calls go through
 * `webAdmin`, for an admin's web session, and auth checks the role).
 */
import type { AuthClient } from './auth-client.ts';
import type { ProxyAuditEvent } from './audit.ts';

/** Audit events of the kinds a proxy emits (auth refuses others from a proxy). */
export interface ProxyAudit { emitAudit(req: ProxyAuditEvent): Promise<void> }

/** Cluster facts, CA keys and whether a certificate's account is still live (cluster-info.ts, and every component that checks certificates). */
export type ClusterInfoAuth = Pick<AuthClient, 'ping' | 'checkAccount'>;

/** Signed web API requests (cert-auth.ts): certificates as above, and each nonce claimed once for the cluster. */
export type SignedRequestAuth = ClusterInfoAuth & Pick<AuthClient, 'claimNonce'>;

/** The access decision before any dial (node-dialer.ts's authorizeNode). */
export type NodeAccessAuth = Pick<AuthClient, 'authorizeSsh'>;

/** Decide, dial and audit the connection (node-dialer.ts's dialNode). */
export type NodeDialAuth = Pick<AuthClient, 'authorizeSsh'> & ProxyAudit;

/** The TLS tunnel to nodes (tunnel.ts): the recording mode, then a dial. */
export type TunnelAuth = SignedRequestAuth & NodeDialAuth;

/** The recording proxy (recording-proxy.ts): its host certificate, the login check, audit. */
export type RecordingProxyAuth = Pick<AuthClient, 'signHostCert' | 'authorizeSsh'> & ProxyAudit;

/** Writing one recording (recorder.ts). */
export type RecorderAuth = Pick<AuthClient, 'startRecording' | 'appendRecording' | 'finishRecording'>;

/** The live sessions of a proxy (session-hub.ts): their recordings and their reports. */
export type HubAuth = RecorderAuth & Pick<AuthClient, 'upsertActiveSession' | 'endActiveSession' | 'heartbeatSessions'>;

/** The proxy-to-proxy relay of joins (peer-relay.ts): its TLS identity from the cluster CA. */
export type PeerRelayAuth = Pick<AuthClient, 'signTlsCert'>;

/** The agent of a web session's key (auth-agent.ts). */
export type WebSessionAgentAuth = Pick<AuthClient, 'webSessionAgent'>;

/** The session behind a web UI cookie (web-auth.ts). */
export type WebSessionAuth = Pick<AuthClient, 'getWebSession'>;

/** Reading a recording page by page (recording-cast.ts). */
export type RecordingReadAuth = Pick<AuthClient, 'readRecording'>;

/** The web UI's routes (web-routes.ts): web login, account, lists, recordings, audit. */
export type WebRoutesAuth = RecordingReadAuth & Pick<AuthClient,
  'createWebSession' | 'deleteWebSession' | 'changePassword' | 'beginTotpEnrol' | 'finishTotpEnrol'
  | 'listNodes' | 'listActiveSessions' | 'listRecordings' | 'searchAudit'>;

/** The web UI's admin pages (web-admin-routes.ts): admin calls made for an admin's web session, checked by auth. */
export type WebAdminAuth = Pick<AuthClient, 'webAdmin'>;

/** The web terminal (web-terminal.ts): dial, the agent of the session, joins. */
export type WebTerminalAuth = ClusterInfoAuth & NodeDialAuth & WebSessionAgentAuth & Pick<AuthClient, 'authorizeJoin'>;

/** The SSH listener (ssh-server.ts): certificates, dials, joins, and the recording proxy. */
export type SshListenerAuth = ClusterInfoAuth & NodeDialAuth & RecordingProxyAuth & Pick<AuthClient, 'authorizeJoin'>;

/** The web server (web-server.ts): login and invites, and everything it serves. */
export type WebServerAuth = Pick<AuthClient, 'ping' | 'caKeys' | 'loginSsh' | 'getInvite' | 'acceptInvite'>
  & TunnelAuth & WebSessionAuth & WebRoutesAuth & WebAdminAuth & WebTerminalAuth;

/** All the proxy asks of auth (proxy-service.ts): its TLS certificate, heartbeats, and its parts. */
export type ProxyAuth = Pick<AuthClient, 'signTlsCert' | 'heartbeatProxy'> & WebServerAuth & SshListenerAuth & HubAuth;

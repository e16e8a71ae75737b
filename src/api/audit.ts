/**
 * The audit log's contract: the event names Postern emits (auth and the proxy alike), one
 * event as the log keeps it, and the filters of a search (`postern audit`, the web UI's
 * Audit page, the Auth API's `searchAudit`).
 */

/** The event names Postern emits, by meaning. */
export const AuditType = {
  loginSuccess: 'user.login',
  loginFailure: 'user.login.failure',
  userLocked: 'user.locked',
  certIssued: 'cert.issued',
  userCreated: 'user.created',
  userDeleted: 'user.deleted',
  userReset: 'user.reset',
  /** An admin changed a user's roles or logins (updateUser): before and after. */
  userUpdated: 'user.updated',
  /** An admin cleared a user's lockout (unlockUser). */
  userUnlocked: 'user.unlocked',
  inviteAccepted: 'user.signup',
  inviteFailure: 'user.signup.failure',
  tokenCreated: 'token.created',
  tokenDeleted: 'token.deleted',
  proxyJoined: 'proxy.joined',
  proxyJoinFailure: 'proxy.join.failure',
  /** An admin removed a proxy and revoked its identity (`postern proxies rm`). */
  proxyRemoved: 'proxy.removed',
  settingsChanged: 'cluster.settings',
  nodeAdded: 'node.added',
  nodeUpdated: 'node.updated',
  nodeRemoved: 'node.removed',
  nodeRenewed: 'node.renewed',
  roleChanged: 'role.changed',
  roleRemoved: 'role.removed',
  /** The proxy asked to reach a target and auth refused: the reason is in `reason`. */
  accessDenied: 'access.denied',
  /** A recorded session started (the proxy's startRecording): user, node, login, recording. */
  recordingStart: 'recording.start',
  /** A recorded session ended (finishRecording): exit code, duration, bytes. */
  recordingEnd: 'recording.end',
  /** A user read a recording through a proxy (play, download, the web player). */
  recordingAccess: 'recording.access',
  /** The proxy dialled a node for a user (target, node, login, via). */
  sessionProxy: 'session.proxy',
  /** A live session started or ended at a proxy (user, node, login, sessionId; end: exit code). */
  sessionStart: 'session.start',
  sessionEnd: 'session.end',
  /** Someone joined (or was refused joining) a live session: mode, owner, sessionId. */
  sessionJoin: 'session.join',
  /** A command run through the recording proxy (command). */
  sessionExec: 'session.exec',
  /** A port forward through the recording proxy (direction, host, port). */
  portForward: 'port.forward',
  /** A web session was created (a web login) or ended (logout or expiry). */
  webSessionCreate: 'web.session.create',
  webSessionEnd: 'web.session.end',
  /** A user changed their password or enrolled a new TOTP secret (web UI). */
  passwordChanged: 'user.password',
  totpEnrolled: 'user.totp',
  /** An admin locked a user, role, login or node (target, reason, expiresAt), or removed a lock. */
  lockCreated: 'lock.created',
  lockDeleted: 'lock.deleted',
  /** A proxy ended a live connection because a lock, a reset or a removal now covers it (reason). */
  sessionTerminated: 'session.terminated',
} as const;

/** One of the event names in `AuditType`. */
export type AuditType = (typeof AuditType)[keyof typeof AuditType];

/** An event as it is emitted (`emitAudit`): auth adds the time. `success` false marks a failure or a denial. */
export interface NewAuditEvent {
  type: AuditType;
  user?: string;
  addr?: string;
  success: boolean;
  message?: string;
  [field: string]: unknown;
}

/** The audit events a proxy emits; auth refuses any other type from a proxy identity. */
export const PROXY_AUDIT_TYPES = [
  AuditType.sessionProxy, AuditType.sessionStart, AuditType.sessionEnd, AuditType.sessionExec, AuditType.portForward,
  AuditType.sessionTerminated,
] as const;

/** An event a proxy emits: its type is one of PROXY_AUDIT_TYPES (checked by the typecheck on the proxy side, by auth at run time). */
export interface ProxyAuditEvent extends NewAuditEvent {
  type: (typeof PROXY_AUDIT_TYPES)[number];
}

/** One audit event as the log keeps it. */
export interface AuditEvent extends NewAuditEvent {
  time: string;
}

/**
 * Filters of a search, as the Auth API takes them. `type` matches the name or a prefix of
 * dotted parts (`user` matches `user.login`); `since` is an ISO time; `limit` keeps the
 * newest. A proxy must name the `requester`, who must hold the admin role.
 */
export interface AuditQuery {
  since?: string;
  type?: string;
  user?: string;
  limit?: number;
  requester?: string;
}

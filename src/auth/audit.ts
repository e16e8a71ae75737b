/** The audit log: every security-relevant event, kept by auth in time order. */
import { randomBytes } from 'node:crypto';
import type { Backend } from '../storage/backend.ts';

/** One audit event. `success` false marks a failure or a denial. */
export interface AuditEvent {
  time: string;
  type: string;
  user?: string;
  addr?: string;
  success: boolean;
  message?: string;
  [field: string]: unknown;
}

/** The event types Postern emits. */
export const AuditType = {
  loginSuccess: 'user.login',
  loginFailure: 'user.login.failure',
  userLocked: 'user.locked',
  certIssued: 'cert.issued',
  userCreated: 'user.created',
  userDeleted: 'user.deleted',
  userReset: 'user.reset',
  inviteAccepted: 'user.signup',
  inviteFailure: 'user.signup.failure',
  tokenCreated: 'token.created',
  proxyJoined: 'proxy.joined',
  proxyJoinFailure: 'proxy.join.failure',
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
} as const;

/** Appends an event; keys sort by time so ranges read in order. */
export async function emitAudit(backend: Backend, event: Omit<AuditEvent, 'time'> & { time?: string }, now: Date): Promise<AuditEvent> {
  const full = { ...event, time: event.time ?? now.toISOString() } as AuditEvent;
  const key = `audit/${String(now.getTime()).padStart(15, '0')}-${randomBytes(4).toString('hex')}`;
  await backend.put(key, JSON.stringify(full));
  return full;
}

/** Filters for reading the log. */
export interface AuditQuery {
  since?: Date;
  type?: string;
  user?: string;
  limit?: number;
}

/** Reads events, oldest first, matching the filters. */
export async function searchAudit(backend: Backend, q: AuditQuery = {}): Promise<AuditEvent[]> {
  const after = q.since ? `audit/${String(q.since.getTime() - 1).padStart(15, '0')}~` : undefined;
  const items = await backend.getRange('audit/', { after });
  const out: AuditEvent[] = [];
  for (const item of items) {
    const e = JSON.parse(item.value) as AuditEvent;
    if (q.type && e.type !== q.type && !e.type.startsWith(`${q.type}.`)) continue;
    if (q.user && e.user !== q.user) continue;
    out.push(e);
  }
  return q.limit ? out.slice(-q.limit) : out;
}

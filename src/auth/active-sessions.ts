/**
 * Live sessions, as the proxies report them: each proxy upserts every session it carries
 * (web terminals, recording-mode SSH) when it starts, when someone joins or leaves, and
 * every 30 s; a record lives 90 s past its last report, so a proxy that dies leaves no
 * ghost for long. Who may see and join whom is decided here from the roles:
 *
 *   - the owner may always join their own session, as observer or peer;
 *   - otherwise a role of the joiner must hold a `join_sessions` rule whose `roles` name a
 *     role of the session's owner ('*' for any) and whose `modes` include the mode asked.
 */
import type { Backend } from '../storage/backend.ts';
import type { ActiveSession, JoinMode } from '../api/types.ts';
import type { RoleSpec } from '../api/auth-types.ts';
import { ValidationError } from '../core/errors.ts';

/** How long a session is kept after its last report. */
export const ACTIVE_SESSION_TTL_MS = 90_000;

const ID_RE = /^[A-Za-z0-9_-]{8,64}$/;
const key = (id: string): string => `active_sessions/${id}`;

/** Checks a session id on entry. */
export function checkSessionId(id: unknown): string {
  if (typeof id !== 'string' || !ID_RE.test(id)) throw new ValidationError('a session id is 8 to 64 letters, digits, "-" or "_"');
  return id;
}

/** Checks a proxy's report and returns a clean copy. */
export function checkActiveSession(s: ActiveSession): ActiveSession {
  if (typeof s !== 'object' || s === null) throw new ValidationError('an active session must be an object');
  const text = (v: unknown, field: string, max = 256): string => {
    if (typeof v !== 'string' || v === '' || v.length > max) throw new ValidationError(`${field} must be a string of 1 to ${max} characters`);
    return v;
  };
  if (s.kind !== 'web' && s.kind !== 'ssh') throw new ValidationError('kind must be "web" or "ssh"');
  if (!Array.isArray(s.participants) || s.participants.length > 1000) throw new ValidationError('participants must be a list');
  const participants = s.participants.map((p, i) => {
    if (p.mode !== 'owner' && p.mode !== 'observer' && p.mode !== 'peer') throw new ValidationError(`participants[${i}].mode must be owner, observer or peer`);
    return { user: text(p.user, `participants[${i}].user`, 128), mode: p.mode, joinedAt: text(p.joinedAt, `participants[${i}].joinedAt`, 64) };
  });
  const size = (v: unknown, field: string): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 10_000) throw new ValidationError(`${field} must be a whole number from 1 to 10000`);
    return v;
  };
  const width = size(s.width, 'width');
  const height = size(s.height, 'height');
  return {
    id: checkSessionId(s.id), kind: s.kind, user: text(s.user, 'user', 128), node: text(s.node, 'node'), login: text(s.login, 'login', 64),
    startedAt: text(s.startedAt, 'startedAt', 64), proxy: text(s.proxy, 'proxy'),
    ...(s.proxyWebAddr !== undefined ? { proxyWebAddr: text(s.proxyWebAddr, 'proxyWebAddr') } : {}),
    ...(s.proxySshAddr !== undefined ? { proxySshAddr: text(s.proxySshAddr, 'proxySshAddr') } : {}),
    ...(s.recordingId !== undefined ? { recordingId: text(s.recordingId, 'recordingId') } : {}),
    participants,
    ...(width !== undefined ? { width } : {}),
    ...(height !== undefined ? { height } : {}),
  };
}

/** Stores (or refreshes) a report. */
export async function upsertActiveSession(backend: Backend, s: ActiveSession, now: Date): Promise<void> {
  await backend.put(key(s.id), JSON.stringify(s), { expires: new Date(now.getTime() + ACTIVE_SESSION_TTL_MS) });
}

/** Forgets a session that ended. */
export async function endActiveSession(backend: Backend, id: string): Promise<void> {
  await backend.delete(key(id));
}

/** One session, or undefined. */
export async function getActiveSession(backend: Backend, id: string): Promise<ActiveSession | undefined> {
  const item = await backend.get(key(id));
  return item ? JSON.parse(item.value) as ActiveSession : undefined;
}

/** Every live session, oldest first. */
export async function listActiveSessions(backend: Backend): Promise<ActiveSession[]> {
  const items = await backend.getRange('active_sessions/');
  return items.map((i) => JSON.parse(i.value) as ActiveSession).sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}

/** The modes in which a holder of `joinerRoles` may join a session of an owner holding `ownerRoles`. */
export function joinModes(joinerRoles: RoleSpec[], ownerRoles: string[]): Set<JoinMode> {
  const modes = new Set<JoinMode>();
  for (const role of joinerRoles) {
    for (const rule of role.join_sessions ?? []) {
      if (rule.roles.includes('*') || rule.roles.some((r) => ownerRoles.includes(r))) for (const m of rule.modes) modes.add(m);
    }
  }
  return modes;
}

/** Checks the optional `join_sessions` of a role spec; returns a clean copy or undefined. */
export function checkJoinRules(roleName: string, rules: unknown): RoleSpec['join_sessions'] {
  if (rules === undefined) return undefined;
  if (!Array.isArray(rules)) throw new ValidationError(`join_sessions of role "${roleName}" must be a list of { roles, modes }`);
  return rules.map((r: unknown, i) => {
    const rule = r as { roles?: unknown; modes?: unknown };
    if (typeof rule !== 'object' || rule === null || !Array.isArray(rule.roles) || rule.roles.length === 0 || rule.roles.some((x) => typeof x !== 'string' || x === '')) {
      throw new ValidationError(`join_sessions[${i}] of role "${roleName}" needs roles: a list of role names, or ["*"] for anyone`);
    }
    if (!Array.isArray(rule.modes) || rule.modes.length === 0 || rule.modes.some((m) => m !== 'observer' && m !== 'peer')) {
      throw new ValidationError(`join_sessions[${i}] of role "${roleName}" needs modes: observer, peer or both`);
    }
    return { roles: [...(rule.roles as string[])], modes: [...new Set(rule.modes as JoinMode[])] };
  });
}

/**
 * Live sessions, as the proxies report them: each proxy upserts every session it carries
 * (web terminals, recording-mode SSH) when it starts, when someone joins or leaves, and
 * every 30 s; a record lives 90 s past its last report. A proxy process also says it is
 * alive every 2 s while it carries sessions (heartbeatSessions, one small write per proxy,
 * not per session); a session whose proxy process has been silent for 10 s is no longer
 * listed nor joinable, so a proxy that dies (kill -9, a lost host) leaves no ghost past
 * seconds. Who may see and join whom is decided here from the roles:
 *
 *   - the owner may always join their own session, as observer or peer;
 *   - otherwise a role of the joiner must hold a `join_sessions` rule whose `roles` name a
 *     role of the session's owner ('*' for any) and whose `modes` include the mode asked.
 */
import type { AtomicOp, Backend } from '../storage/backend.ts';
import type { ActiveSession, JoinMode } from '../api/types.ts';
import type { RoleSpec } from '../api/auth-types.ts';
import { ValidationError } from '../core/errors.ts';

/** How long a session is kept after its last report. */
export const ACTIVE_SESSION_TTL_MS = 90_000;

/** How long a proxy process's sessions stay listed after its last heartbeat. */
export const PROXY_ALIVE_TTL_MS = 10_000;
/** How often a proxy carrying sessions says it is alive (session-hub.ts). */
export const PROXY_HEARTBEAT_MS = 2_000;

const ID_RE = /^[A-Za-z0-9_-]{8,64}$/;
const INSTANCE_RE = /^[A-Za-z0-9_-]{8,64}$/;
const key = (id: string): string => `active_sessions/${id}`;
const ALIVE = 'active_session_proxies';
const aliveKey = (proxy: string, instance: string): string => `${ALIVE}/${encodeURIComponent(proxy)}/${instance}`;

/** Checks a proxy process's instance id on entry. */
export function checkInstance(v: unknown): string {
  if (typeof v !== 'string' || !INSTANCE_RE.test(v)) throw new ValidationError('a proxy instance is 8 to 64 letters, digits, "-" or "_"');
  return v;
}

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
    ...(s.proxyPeerAddr !== undefined ? { proxyPeerAddr: text(s.proxyPeerAddr, 'proxyPeerAddr') } : {}),
    ...(s.proxyInstance !== undefined ? { proxyInstance: checkInstance(s.proxyInstance) } : {}),
    ...(s.recordingId !== undefined ? { recordingId: text(s.recordingId, 'recordingId') } : {}),
    participants,
    ...(width !== undefined ? { width } : {}),
    ...(height !== undefined ? { height } : {}),
  };
}

/** Stores (or refreshes) a report; a report also says its proxy process is alive. */
export async function upsertActiveSession(backend: Backend, s: ActiveSession, now: Date): Promise<void> {
  const ops: AtomicOp[] = [{ kind: 'put', key: key(s.id), value: JSON.stringify(s), expires: new Date(now.getTime() + ACTIVE_SESSION_TTL_MS) }];
  if (s.proxyInstance) ops.push(aliveOp(s.proxy, s.proxyInstance, now));
  await backend.atomic(ops);
}

function aliveOp(proxy: string, instance: string, now: Date): AtomicOp {
  return { kind: 'put', key: aliveKey(proxy, instance), value: JSON.stringify({ at: now.toISOString() }), expires: new Date(now.getTime() + PROXY_ALIVE_TTL_MS) };
}

/** A proxy process that carries sessions is alive now. */
export async function proxyAlive(backend: Backend, proxy: string, instance: string, now: Date): Promise<void> {
  await backend.atomic([aliveOp(proxy, instance, now)]);
}

/** Whether the proxy process carrying `s` is alive; a report without an instance (an older proxy) lives by its own 90 s. */
function carried(s: ActiveSession, alive: ReadonlySet<string>): boolean {
  return s.proxyInstance === undefined || alive.has(aliveKey(s.proxy, s.proxyInstance));
}

async function aliveSet(backend: Backend): Promise<Set<string>> {
  return new Set((await backend.getRange(ALIVE)).map((i) => i.key));
}

/** Forgets a session that ended. */
export async function endActiveSession(backend: Backend, id: string): Promise<void> {
  await backend.delete(key(id));
}

/** One session, or undefined (also when its proxy process is gone, unless `evenIfGone`). */
export async function getActiveSession(backend: Backend, id: string, evenIfGone = false): Promise<ActiveSession | undefined> {
  const item = await backend.get(key(id));
  if (!item) return undefined;
  const s = JSON.parse(item.value) as ActiveSession;
  if (evenIfGone || s.proxyInstance === undefined) return s;
  return (await backend.get(aliveKey(s.proxy, s.proxyInstance))) ? s : undefined;
}

/** Every live session whose proxy process is alive, oldest first. */
export async function listActiveSessions(backend: Backend): Promise<ActiveSession[]> {
  const [items, alive] = await Promise.all([backend.getRange('active_sessions/'), aliveSet(backend)]);
  return items.map((i) => JSON.parse(i.value) as ActiveSession).filter((s) => carried(s, alive)).sort((a, b) => a.startedAt.localeCompare(b.startedAt));
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

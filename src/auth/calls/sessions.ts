/**
 * Sessions and recordings: the recordings proxies write and users read through a proxy,
 * and the live sessions proxies report, with the join decision.
 */
import { AccessDeniedError, NotFoundError, ValidationError } from '../../core/errors.ts';
import type { ActiveSession } from '../../api/types.ts';
import type { Identity, RecordingReadRequest } from '../../api/auth-types.ts';
import { AuditType } from '../../api/audit.ts';
import { castHeader } from '../../api/asciicast.ts';
import * as recordings from '../recordings.ts';
import * as active from '../active-sessions.ts';
import * as users from '../users.ts';
import * as roleStore from '../role-store.ts';
import * as locks from '../locks.ts';
import { LockedError, lockMessage } from '../../api/locks.ts';
import { AccountRevokedError } from '../../api/refusals.ts';
import { getSettings } from '../settings.ts';
import { str } from '../args.ts';
import { clientAddr } from './context.ts';
import type { CallContext, Handlers } from './context.ts';

/** The calls of this group. */
export type SessionCallName =
  | 'startRecording' | 'appendRecording' | 'finishRecording' | 'listRecordings' | 'readRecording' | 'getRecording'
  | 'upsertActiveSession' | 'endActiveSession' | 'heartbeatSessions' | 'listActiveSessions' | 'authorizeJoin';

/** The handlers of recordings and live sessions. */
export function sessionCalls(ctx: CallContext): Handlers<SessionCallName> {
  const { backend, clock } = ctx;

  /**
   * Whose recordings a read may see: undefined for all (the admin identity without a user,
   * or a user holding the admin role), else that user's own. A proxy must name the user.
   */
  const recordingViewer = async (id: Identity, user: unknown): Promise<string | undefined> => {
    if (user === undefined && id.role === 'admin') return undefined;
    if (typeof user !== 'string' || user === '') throw new ValidationError(`a ${id.role} must name the user it reads recordings for`);
    const rec = await users.getUser(backend, user);
    return rec?.roles.includes('admin') ? undefined : user;
  };

  /** The record a read asks for, once the reader may see it (a refusal is an audit event). */
  const readableRecording = async (id: Identity, req: RecordingReadRequest, first: boolean): Promise<recordings.RecordingRecord> => {
    if (typeof req !== 'object' || req === null) throw new ValidationError('a read needs the recording id');
    const rid = recordings.checkRecordingId(req.id);
    const only = await recordingViewer(id, req.user);
    const rec = await recordings.requireRecording(backend, rid);
    if (only !== undefined && rec.user !== only) {
      const message = `recording ${rid} is not yours: only the user it recorded and admins may see it`;
      await ctx.audit({ type: AuditType.accessDenied, user: only, success: false, recording: rid, reason: 'recording of another user', message });
      throw new AccessDeniedError(message, { hint: 'See the recordings you may play with:  postern recordings ls' });
    }
    if (first && typeof req.user === 'string') {
      await ctx.audit({ type: AuditType.recordingAccess, user: req.user, success: true, recording: rid, owner: rec.user, node: rec.node });
    }
    return rec;
  };

  return {
    // ---- recordings (recordings.ts): proxies write, users read through a proxy ----

    async startRecording(id, req) {
      const settings = await getSettings(backend);
      const rec = await recordings.startRecording(backend, id.name, req, clock.now(), settings.record_input);
      await ctx.audit({
        type: AuditType.recordingStart, user: rec.user, addr: rec.clientAddr, success: true, node: rec.node, login: rec.login,
        kind: rec.kind, ...(rec.command !== undefined ? { command: rec.command } : {}), recording: rec.id,
        ...(rec.sessionId ? { sessionId: rec.sessionId } : {}), proxy: id.name,
      });
      return { id: rec.id, recordInput: rec.recordInput };
    },

    async appendRecording(id, req) {
      return (await recordings.appendRecording(backend, id.name, req, clock.now())).result;
    },

    async finishRecording(id, req) {
      const { record: rec, changed } = await recordings.finishRecording(backend, id.name, req, clock.now());
      if (changed) {
        await ctx.audit({
          type: AuditType.recordingEnd, user: rec.user, addr: rec.clientAddr, success: true, node: rec.node, login: rec.login,
          kind: rec.kind, recording: rec.id, durationSec: rec.durationSec, bytes: rec.bytes,
          ...(rec.exitCode !== undefined ? { exitCode: rec.exitCode } : {}), ...(rec.lostBytes ? { lostBytes: rec.lostBytes } : {}),
        });
      }
      return recordings.recordingMeta(rec);
    },

    async listRecordings(id, req) {
      const only = await recordingViewer(id, req.user);
      if (req.limit !== undefined && (typeof req.limit !== 'number' || !Number.isInteger(req.limit) || req.limit < 1)) throw new ValidationError('limit must be a whole number above 0');
      const all = (await recordings.listRecordings(backend)).filter((r) => only === undefined || r.user === only);
      return all.slice(0, req.limit ?? all.length).map(recordings.recordingMeta);
    },

    async readRecording(id, req) {
      const after = req?.afterSeq;
      if (after !== undefined && (typeof after !== 'number' || !Number.isInteger(after) || after < 0)) throw new ValidationError('afterSeq must be a whole number, 0 or more');
      const max = req?.maxBytes;
      if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 64 << 20)) throw new ValidationError('maxBytes must be a whole number from 1 to 64 MiB');
      const rec = await readableRecording(id, req, after === undefined);
      const meta = recordings.recordingMeta(rec);
      const page = await recordings.readChunks(backend, rec.id, after, max);
      return { meta, header: castHeader(meta), ...page };
    },

    async getRecording(id, req) {
      const rec = await readableRecording(id, req, true);
      const meta = recordings.recordingMeta(rec);
      const parts: string[] = [];
      let after: number | undefined;
      for (;;) {
        const page = await recordings.readChunks(backend, rec.id, after);
        for (const c of page.chunks) parts.push(c.events);
        if (!page.more || page.chunks.length === 0) break;
        after = page.chunks[page.chunks.length - 1].seq;
      }
      return { meta, header: castHeader(meta), events: parts.join('') };
    },

    // ---- live sessions (active-sessions.ts) ----

    async upsertActiveSession(id, req) {
      const s = active.checkActiveSession(req);
      // A proxy reports under its own name, whatever the report says, and only its own sessions.
      const proxy = id.role === 'proxy' ? id.name : s.proxy;
      const before = await active.getActiveSession(backend, s.id, true);
      if (before && before.proxy !== proxy) throw new AccessDeniedError(`session ${s.id} belongs to proxy ${before.proxy}`, { hint: 'Session ids are unique per proxy; report only the sessions this proxy carries' });
      await active.upsertActiveSession(backend, { ...s, proxy }, clock.now());
    },

    async endActiveSession(id, req) {
      const sessionId = active.checkSessionId(req?.id);
      const before = await active.getActiveSession(backend, sessionId, true);
      if (before && id.role === 'proxy' && before.proxy !== id.name) throw new AccessDeniedError(`session ${sessionId} belongs to proxy ${before.proxy}`, { hint: 'A proxy ends only the sessions it carries' });
      await active.endActiveSession(backend, sessionId);
    },

    async heartbeatSessions(id, req) {
      // Under the caller's own name: a proxy keeps only its own sessions alive.
      await active.proxyAlive(backend, id.name, active.checkInstance(req?.instance), clock.now());
    },

    async listActiveSessions(id, req) {
      const all = await active.listActiveSessions(backend);
      if (req?.user === undefined && id.role === 'admin') return all;
      const viewer = str(req?.user, 'user');
      const rec = await users.getUser(backend, viewer);
      if (!rec) return [];
      const mine = await roleStore.existingRoles(backend, rec.roles);
      const out: ActiveSession[] = [];
      for (const s of all) {
        if (s.user !== viewer && active.joinModes(mine, (await users.getUser(backend, s.user))?.roles ?? []).size === 0) continue;
        // Where proxies reach each other is the cluster's business, not a user's.
        const { proxyPeerAddr: _peer, proxyInstance: _instance, ...shown } = s;
        out.push(shown);
      }
      return out;
    },

    async authorizeJoin(_id, req) {
      const user = str(req?.user, 'user');
      const sessionId = active.checkSessionId(req.sessionId);
      if (req.mode !== 'observer' && req.mode !== 'peer') throw new ValidationError('mode must be "observer" or "peer"');
      const base = { type: AuditType.sessionJoin, user, addr: clientAddr(req), sessionId, mode: req.mode };
      const s = await active.getActiveSession(backend, sessionId);
      if (!s) {
        await ctx.audit({ ...base, success: false, reason: 'no such session' });
        throw new NotFoundError(`no live session ${sessionId}`, { hint: 'List the live sessions you may join with:  postern sessions ls' });
      }
      const joiner = await users.getUser(backend, user);
      const owner = await users.getUser(backend, s.user);
      const where = { owner: s.user, node: s.node, login: s.login };
      if (!joiner) {
        const message = `user "${user}" does not exist any more`;
        await ctx.audit({ ...base, ...where, success: false, reason: 'the account no longer exists', message });
        throw new AccessDeniedError(message, { hint: 'Ask an admin to add you again, then log in:  postern login' });
      }
      // A lock on the joiner, one of their roles, or the session's login or node (locks.ts): joining is reaching that shell.
      const lock = await locks.lockFor(backend, { user, roles: joiner.roles, login: s.login, node: s.node }, clock.now());
      if (lock) {
        const message = lockMessage(lock);
        await ctx.audit({ ...base, ...where, success: false, reason: message, message, lockId: lock.id });
        throw new LockedError(message);
      }
      // A certificate from before a reset (or of a removed and re-created name), on a connection opened before it.
      if (req.account !== undefined && (typeof req.account !== 'string' || (joiner.account ?? '') !== req.account)) {
        const message = `the certificate of "${user}" no longer belongs to a live account: the account was reset or re-created since it was issued`;
        await ctx.audit({ ...base, ...where, success: false, reason: 'the account was reset or re-created', message });
        throw new AccountRevokedError(message);
      }
      const allowed = s.user === user || active.joinModes(await roleStore.existingRoles(backend, joiner.roles), owner?.roles ?? []).has(req.mode);
      if (!allowed) {
        const message = `you may not join the session of ${s.user} as ${req.mode}`;
        await ctx.audit({ ...base, ...where, success: false, reason: 'no join_sessions rule allows it', message });
        throw new AccessDeniedError(message, { hint: 'An admin can allow it with a role\'s join_sessions: [{ roles: [...], modes: [observer, peer] }]' });
      }
      await ctx.audit({ ...base, ...where, success: true });
      return s;
    },
  };
}

/**
 * The web API routes of the web UI (and of the CLI where they overlap): web login and
 * logout, the account, nodes, live sessions, recordings and the audit log (and, from
 * web-admin-routes.ts, the admin pages'). Authentication
 * is web-auth.ts's: the session cookie (with CSRF on state changes) or a signed request.
 */
import type { FastifyInstance } from 'fastify';
import type { WebAdminAuth, WebRoutesAuth } from '../api/proxy-auth.ts';
import type { Logger } from '../core/logger.ts';
import { AccessDeniedError } from '../core/errors.ts';
import { recordingParamsSchema } from '../api/schemas.ts';
import { auditQuerySchema, beginTotpSchema, changePasswordSchema, finishTotpSchema, webLoginSchema } from '../api/web-schemas.ts';
import { parseNodesQuery } from './cert-auth.ts';
import { openCastStream, CAST_CONTENT_TYPE } from './recording-cast.ts';
import type { WebAuth } from './web-auth.ts';
import { readCookie, SESSION_COOKIE, setSessionCookie } from './web-auth.ts';
import { registerWebAdminRoutes } from './web-admin-routes.ts';

/** What the routes need. */
export interface WebRoutesOptions {
  auth: WebRoutesAuth & WebAdminAuth;
  webAuth: WebAuth;
  log: Logger;
}

/** Registers the routes. */
export function registerWebRoutes(app: FastifyInstance, opts: WebRoutesOptions): void {
  const { auth, webAuth } = opts;
  const noStore = { 'cache-control': 'no-store' };

  app.post<{ Body: { user: string; password: string; otp?: string } }>('/webapi/sessions/web', { schema: { body: webLoginSchema } }, async (req, reply) => {
    const { sessionId, ...info } = await auth.createWebSession({ ...req.body, clientAddr: req.ip });
    setSessionCookie(reply, sessionId, info.expiresAt);
    void reply.headers(noStore);
    return info;
  });
  app.get('/webapi/sessions/web', async (req, reply) => {
    void reply.headers(noStore);
    return (await webAuth.session(req)).session;
  });
  app.delete('/webapi/sessions/web', async (req, reply) => {
    const s = await webAuth.session(req);
    await auth.deleteWebSession({ sessionId: s.sessionId, clientAddr: req.ip });
    setSessionCookie(reply, undefined);
    return reply.code(204).send();
  });

  app.post<{ Body: { currentPassword: string; otp?: string; newPassword: string } }>('/webapi/account/password', { schema: { body: changePasswordSchema } }, async (req, reply) => {
    const s = await webAuth.session(req);
    await auth.changePassword({ ...req.body, sessionId: s.sessionId, clientAddr: req.ip });
    return reply.code(204).send();
  });
  app.post<{ Body: { currentPassword: string; otp?: string } }>('/webapi/account/totp', { schema: { body: beginTotpSchema } }, async (req, reply) => {
    const s = await webAuth.session(req);
    void reply.headers(noStore);
    return auth.beginTotpEnrol({ ...req.body, sessionId: s.sessionId, clientAddr: req.ip });
  });
  app.put<{ Body: { enrolId: string; otp: string } }>('/webapi/account/totp', { schema: { body: finishTotpSchema } }, async (req, reply) => {
    const s = await webAuth.session(req);
    await auth.finishTotpEnrol({ ...req.body, sessionId: s.sessionId, clientAddr: req.ip });
    return reply.code(204).send();
  });

  // `postern ls` and the Nodes page: only the nodes the user may reach.
  app.get('/webapi/nodes', async (req, reply) => {
    const caller = await webAuth.caller(req);
    void reply.headers(noStore);
    return auth.listNodes({ user: caller.user, ...parseNodesQuery(req.query) });
  });

  // `postern sessions ls` and the Sessions page: live sessions the caller may see.
  app.get('/webapi/sessions', async (req, reply) => {
    const caller = await webAuth.caller(req);
    void reply.headers(noStore);
    return auth.listActiveSessions({ user: caller.user });
  });

  // Recordings: the caller's own, or all for a user with the admin role.
  app.get('/webapi/recordings', async (req, reply) => {
    const caller = await webAuth.caller(req);
    void reply.headers(noStore);
    return auth.listRecordings({ user: caller.user });
  });
  app.get<{ Params: { id: string }; Querystring: { download?: string } }>('/webapi/recordings/:id', { schema: { params: recordingParamsSchema } }, async (req, reply) => {
    const caller = await webAuth.caller(req);
    const { meta, stream } = await openCastStream(auth, { id: req.params.id, user: caller.user });
    stream.on('error', (err) => opts.log.error({ err, recording: meta.id }, 'reading a recording failed midway'));
    const disposition = req.query.download === '1' ? 'attachment' : 'inline';
    return reply.type(CAST_CONTENT_TYPE).header('cache-control', 'no-store')
      .header('content-disposition', `${disposition}; filename="${meta.id}.cast"`).send(stream);
  });

  // The Audit page: admins only (auth checks the role again).
  app.get<{ Querystring: { since?: string; type?: string; user?: string; limit?: string } }>('/webapi/audit', { schema: { querystring: auditQuerySchema } }, async (req, reply) => {
    const caller = await webAuth.caller(req);
    if (caller.via === 'cookie' && !caller.session.isAdmin) throw new AccessDeniedError('only admins may read the audit log', { hint: 'Ask an admin for the admin role' });
    const q = req.query;
    void reply.headers(noStore);
    return auth.searchAudit({
      requester: caller.user,
      ...(q.since ? { since: q.since } : {}), ...(q.type ? { type: q.type } : {}), ...(q.user ? { user: q.user } : {}),
      limit: q.limit ? Math.min(Number(q.limit), 5000) : 500,
    });
  });

  // The admin pages: users, roles, the node registry, settings, join tokens (auth checks the role).
  registerWebAdminRoutes(app, { auth, webAuth });

  // A browser that still sends an ended session's cookie gets it cleared with the 401.
  app.addHook('onSend', async (req, reply, payload) => {
    if (reply.statusCode === 401 && readCookie(req.headers.cookie, SESSION_COOKIE)) setSessionCookie(reply, undefined);
    return payload;
  });
}

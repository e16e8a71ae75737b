/**
 * The web UI's admin pages' routes, /webapi/admin/…: users, roles, the node registry, the
 * cluster settings and join tokens. Each is one admin call of the Auth API that the proxy
 * makes through `webAdmin` with the browser's session id; auth checks that the session's
 * user holds the admin role and audits the call as the CLI's. The proxy checks nothing
 * of the role itself: a refusal is auth's 403. Only a browser session (cookie, CSRF on
 * changes) reaches them; the CLI makes admin calls with its own admin identity.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebAdminAuth } from '../api/proxy-auth.ts';
import type { ClusterSettings, CreateUserRequest, RoleSpec, UpdateUserRequest } from '../api/auth-types.ts';
import type { WebAdminArg, WebAdminCallName, WebAdminResult } from '../api/web-admin.ts';
import {
  adminAddNodeSchema, adminCreateUserSchema, adminNameParamsSchema, adminResetUserSchema, adminRoleSchema, adminSettingsSchema, adminTokenSchema, adminUpdateNodeSchema,
  adminUpdateUserSchema, adminIdParamsSchema, adminCreateLockSchema,
} from '../api/web-admin.ts';
import type { CreateLockRequest } from '../api/locks.ts';
import type { WebAuth } from './web-auth.ts';

/** What the routes need. */
export interface WebAdminRoutesOptions {
  auth: WebAdminAuth;
  webAuth: Pick<WebAuth, 'session'>;
}

/** An invite lives an hour unless the admin says otherwise (as `users add`). */
const INVITE_TTL_MS = 3_600_000;

/** Registers the routes. */
export function registerWebAdminRoutes(app: FastifyInstance, opts: WebAdminRoutesOptions): void {
  const { auth, webAuth } = opts;

  /** One admin call for the request's browser session. */
  const admin = async <K extends WebAdminCallName>(req: FastifyRequest, call: K, arg: WebAdminArg<K>): Promise<WebAdminResult<K>> => {
    const s = await webAuth.session(req);
    return (await auth.webAdmin({ sessionId: s.sessionId, clientAddr: req.ip, call, arg })) as WebAdminResult<K>;
  };
  const noStore = { 'cache-control': 'no-store' };
  type Named = { Params: { name: string } };
  const named = { params: adminNameParamsSchema };

  app.get('/webapi/admin/users', async (req, reply) => {
    void reply.headers(noStore);
    return admin(req, 'listUsers', {});
  });
  app.post<{ Body: Partial<CreateUserRequest> & { name: string } }>('/webapi/admin/users', { schema: { body: adminCreateUserSchema } }, async (req, reply) => {
    const b = req.body;
    void reply.headers(noStore);
    return admin(req, 'createUser', { name: b.name, roles: b.roles ?? [], logins: b.logins ?? [], inviteTtlMs: b.inviteTtlMs ?? INVITE_TTL_MS });
  });
  app.post<Named & { Body: { inviteTtlMs?: number } | undefined }>('/webapi/admin/users/:name/reset', { schema: { params: adminNameParamsSchema, body: adminResetUserSchema } }, async (req, reply) => {
    void reply.headers(noStore);
    return admin(req, 'resetUser', { name: req.params.name, inviteTtlMs: req.body?.inviteTtlMs ?? INVITE_TTL_MS });
  });
  app.delete<Named>('/webapi/admin/users/:name', { schema: named }, async (req, reply) => {
    await admin(req, 'deleteUser', { name: req.params.name });
    return reply.code(204).send();
  });

  app.get('/webapi/admin/roles', async (req, reply) => {
    void reply.headers(noStore);
    return admin(req, 'listRoles', {});
  });
  app.put<Named & { Body: Omit<RoleSpec, 'name'> & { name?: string } }>('/webapi/admin/roles/:name', { schema: { params: adminNameParamsSchema, body: adminRoleSchema } }, async (req) => {
    return admin(req, 'upsertRole', { ...req.body, name: req.params.name });
  });
  app.delete<Named>('/webapi/admin/roles/:name', { schema: named }, async (req, reply) => {
    await admin(req, 'deleteRole', { name: req.params.name });
    return reply.code(204).send();
  });

  app.get('/webapi/admin/nodes', async (req, reply) => {
    void reply.headers(noStore);
    return admin(req, 'listNodes', {});
  });
  app.post<{ Body: { name: string; addr: string; labels?: Record<string, string>; hostPublicKey: string } }>('/webapi/admin/nodes', { schema: { body: adminAddNodeSchema } }, async (req, reply) => {
    void reply.headers(noStore);
    return admin(req, 'addNode', { ...req.body, labels: req.body.labels ?? {} });
  });
  app.put<Named & { Body: { labels: Record<string, string> } }>('/webapi/admin/nodes/:name', { schema: { params: adminNameParamsSchema, body: adminUpdateNodeSchema } }, async (req) => {
    return admin(req, 'updateNode', { name: req.params.name, labels: req.body.labels });
  });
  app.delete<Named>('/webapi/admin/nodes/:name', { schema: named }, async (req, reply) => {
    await admin(req, 'removeNode', { name: req.params.name });
    return reply.code(204).send();
  });

  app.get('/webapi/admin/settings', async (req, reply) => {
    void reply.headers(noStore);
    return admin(req, 'getSettings', {});
  });
  app.put<{ Body: Partial<ClusterSettings> }>('/webapi/admin/settings', { schema: { body: adminSettingsSchema } }, async (req) => {
    return admin(req, 'updateSettings', req.body);
  });

  app.post<{ Body: { type?: 'proxy'; ttlMs?: number } | undefined }>('/webapi/admin/tokens', { schema: { body: adminTokenSchema } }, async (req, reply) => {
    void reply.headers(noStore);
    return admin(req, 'createToken', { type: 'proxy', ttlMs: req.body?.ttlMs ?? 3_600_000 });
  });
  type ById = { Params: { id: string } };
  app.get('/webapi/admin/tokens', async (req, reply) => {
    void reply.headers(noStore);
    return admin(req, 'listTokens', {});
  });
  app.delete<ById>('/webapi/admin/tokens/:id', { schema: { params: adminIdParamsSchema } }, async (req, reply) => {
    await admin(req, 'deleteToken', { id: req.params.id });
    return reply.code(204).send();
  });

  app.patch<Named & { Body: Omit<UpdateUserRequest, 'name'> }>('/webapi/admin/users/:name', { schema: { params: adminNameParamsSchema, body: adminUpdateUserSchema } }, async (req) => {
    return admin(req, 'updateUser', { ...req.body, name: req.params.name });
  });
  app.post<Named>('/webapi/admin/users/:name/unlock', { schema: named }, async (req) => {
    return admin(req, 'unlockUser', { name: req.params.name });
  });

  app.get('/webapi/admin/locks', async (req, reply) => {
    void reply.headers(noStore);
    return admin(req, 'listLocks', {});
  });
  app.post<{ Body: CreateLockRequest }>('/webapi/admin/locks', { schema: { body: adminCreateLockSchema } }, async (req) => {
    return admin(req, 'createLock', req.body);
  });
  app.delete<ById>('/webapi/admin/locks/:id', { schema: { params: adminIdParamsSchema } }, async (req, reply) => {
    await admin(req, 'deleteLock', { id: req.params.id });
    return reply.code(204).send();
  });
}

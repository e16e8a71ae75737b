/**
 * The admin pages of the web UI: which admin calls of the Auth API a web user with the
 * admin role may make through the proxy (`webAdmin`), and the JSON schemas of the proxy's
 * /webapi/admin/… routes. Auth checks the role of the session's user on every such call;
 * the proxy only forwards the session id.
 */
import type { AuthCallName, AuthClient } from './auth-client.ts';

/** The admin calls the web UI may make on behalf of an admin's web session. */
export const WEB_ADMIN_CALLS = [
  'listUsers', 'createUser', 'resetUser', 'deleteUser',
  'listRoles', 'upsertRole', 'deleteRole',
  'listNodes', 'addNode', 'updateNode', 'removeNode',
  'getSettings', 'updateSettings',
  'createToken', 'listTokens', 'deleteToken',
  'updateUser', 'unlockUser',
  'listLocks', 'createLock', 'deleteLock',
] as const satisfies ReadonlyArray<AuthCallName>;

/** The name of one of them. */
export type WebAdminCallName = typeof WEB_ADMIN_CALLS[number];

/** Whether a name sent over the wire is one of them. */
export function isWebAdminCall(name: unknown): name is WebAdminCallName {
  return typeof name === 'string' && (WEB_ADMIN_CALLS as readonly string[]).includes(name);
}

/** The argument of an admin call as AuthClient declares it (an empty object for calls without one). */
export type WebAdminArg<K extends WebAdminCallName> = Parameters<AuthClient[K]> extends [infer A, ...unknown[]] ? A : Record<string, never>;

/** The result of an admin call as AuthClient declares it. */
export type WebAdminResult<K extends WebAdminCallName> = Awaited<ReturnType<AuthClient[K]>>;

/** `webAdmin`'s argument with the call's name narrowed (AuthClient declares it as a string). */
export type WebAdminRequest<K extends WebAdminCallName = WebAdminCallName> = Parameters<AuthClient['webAdmin']>[0] & { call: K; arg: WebAdminArg<K> };

const name = { type: 'string', minLength: 1, maxLength: 64 } as const;
const names = { type: 'array', maxItems: 64, items: name } as const;
const labelMap = { type: 'object', maxProperties: 64, additionalProperties: { type: 'string', maxLength: 256 } } as const;

/** `:name` in the admin routes' paths. */
export const adminNameParamsSchema = {
  type: 'object', required: ['name'], properties: { name },
} as const;

/** `POST /webapi/admin/users`: invite a new user. */
export const adminCreateUserSchema = {
  type: 'object', required: ['name'], additionalProperties: false,
  properties: { name, roles: names, logins: names, inviteTtlMs: { type: 'integer', minimum: 1 } },
} as const;

/** `POST /webapi/admin/users/:name/reset`: a new invite for an existing user. */
export const adminResetUserSchema = {
  type: 'object', additionalProperties: false,
  properties: { inviteTtlMs: { type: 'integer', minimum: 1 } },
} as const;

/** `PUT /webapi/admin/roles/:name`: create or change a role (auth checks it in full). */
export const adminRoleSchema = {
  type: 'object', required: ['logins', 'node_labels'], additionalProperties: false,
  properties: {
    name,
    logins: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 64 } },
    node_labels: { type: 'object', maxProperties: 64, additionalProperties: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 256 } } },
    join_sessions: {
      type: 'array', maxItems: 16,
      items: { type: 'object', required: ['roles', 'modes'], additionalProperties: false, properties: { roles: names, modes: { type: 'array', maxItems: 3, items: { type: 'string', maxLength: 16 } } } },
    },
  },
} as const;

/** `POST /webapi/admin/nodes`: register a node by its host public key. */
export const adminAddNodeSchema = {
  type: 'object', required: ['name', 'addr', 'hostPublicKey'], additionalProperties: false,
  properties: { name, addr: { type: 'string', minLength: 1, maxLength: 300 }, labels: labelMap, hostPublicKey: { type: 'string', minLength: 1, maxLength: 16384 } },
} as const;

/** `PUT /webapi/admin/nodes/:name`: a node's new labels (all of them). */
export const adminUpdateNodeSchema = {
  type: 'object', required: ['labels'], additionalProperties: false, properties: { labels: labelMap },
} as const;

/** `PUT /webapi/admin/settings`: some settings (auth checks names and values). */
export const adminSettingsSchema = {
  type: 'object', minProperties: 1, maxProperties: 16,
} as const;

/** `POST /webapi/admin/tokens`: a join token for a proxy. */
export const adminTokenSchema = {
  type: 'object', additionalProperties: false,
  properties: { type: { type: 'string', enum: ['proxy'] }, ttlMs: { type: 'integer', minimum: 1 } },
} as const;

/** `PATCH /webapi/admin/users/:name`: a user's roles and logins, set (all of them) or edited. */
export const adminUpdateUserSchema = {
  type: 'object', additionalProperties: false, minProperties: 1,
  properties: { setRoles: names, addRoles: names, removeRoles: names, setLogins: names, addLogins: names, removeLogins: names },
} as const;

/** `:id` of a join token or a lock in the admin routes' paths. */
export const adminIdParamsSchema = {
  type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 4, maxLength: 128, pattern: '^[0-9a-fA-F-]+$' } },
} as const;

/** `POST /webapi/admin/locks`: lock one user, role, login or node (auth checks the target in full). */
export const adminCreateLockSchema = {
  type: 'object', required: ['target'], additionalProperties: false,
  properties: {
    target: { type: 'object', minProperties: 1, maxProperties: 1, additionalProperties: false, properties: { user: name, role: name, login: name, node: { type: 'string', minLength: 1, maxLength: 253 } } },
    reason: { type: 'string', maxLength: 1000 },
    ttlMs: { type: 'integer', minimum: 1000 },
  },
} as const;

/**
 * Roles: which logins a user may use on which nodes (by label). Built in: `access` and
 * `admin` (every node, the user's own logins). Admins add more.
 */
import type { Backend } from '../storage/backend.ts';
import { getJson } from '../storage/backend.ts';
import { NotFoundError, ValidationError } from '../core/errors.ts';
import { isLabelName } from '../api/labels.ts';
import type { RoleSpec } from '../api/auth-types.ts';
import { checkJoinRules } from './active-sessions.ts';

/** The template that stands for the user's own logins. */
export const LOGINS_TEMPLATE = '{{internal.logins}}';

/** The built-in roles. */
export const BUILTIN_ROLES: readonly RoleSpec[] = Object.freeze([
  { name: 'access', logins: [LOGINS_TEMPLATE], node_labels: { '*': ['*'] }, builtin: true },
  { name: 'admin', logins: [LOGINS_TEMPLATE], node_labels: { '*': ['*'] }, join_sessions: [{ roles: ['*'], modes: ['observer', 'peer'] }], builtin: true },
]);

const ROLE_NAME_RE = /^[a-z][a-z0-9_-]{0,62}$/;
const LOGIN_RE = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;
const roleKey = (name: string): string => `roles/${name}`;

/** Checks a role spec on entry; throws a ValidationError saying what is wrong. Returns a clean copy. */
export function checkRole(spec: RoleSpec): RoleSpec {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new ValidationError('a role must be an object with name, logins and node_labels');
  if (typeof spec.name !== 'string' || !ROLE_NAME_RE.test(spec.name)) {
    throw new ValidationError(`invalid role name "${String(spec.name)}"`, { hint: 'Use lower-case letters, digits, "-" and "_", starting with a letter' });
  }
  if (BUILTIN_ROLES.some((r) => r.name === spec.name)) {
    throw new ValidationError(`"${spec.name}" is a built-in role and cannot be changed`, { hint: 'Give your role another name' });
  }
  if (!Array.isArray(spec.logins) || spec.logins.length === 0) {
    throw new ValidationError(`role "${spec.name}" needs at least one login`, { hint: `Use ${LOGINS_TEMPLATE} for the user's own logins` });
  }
  for (const l of spec.logins) {
    if (typeof l !== 'string' || (l !== LOGINS_TEMPLATE && !LOGIN_RE.test(l))) {
      throw new ValidationError(`invalid login "${String(l)}" in role "${spec.name}"`, { hint: `A login is a Unix user name such as ubuntu or root, or ${LOGINS_TEMPLATE}` });
    }
  }
  const labels: unknown = spec.node_labels;
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels) || Object.keys(labels).length === 0) {
    throw new ValidationError(`role "${spec.name}" needs node_labels`, { hint: "e.g. node_labels: { env: [dev, staging] }, or { '*': ['*'] } for every node" });
  }
  const node_labels: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(labels)) {
    if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'string' || x.trim() === '')) {
      throw new ValidationError(`node_labels "${k}" of role "${spec.name}" must be a list of non-empty values`, { hint: `e.g. ${k === '*' ? "'*': ['*']" : `${k}: [dev, staging], or ${k}: ['*'] for any value`}` });
    }
    if (k === '*') {
      if (v.length !== 1 || v[0] !== '*') throw new ValidationError(`node_labels "*" of role "${spec.name}" must be ['*'] (every node)`, { hint: 'Name the label to restrict values, e.g. env: [dev]' });
    } else if (!isLabelName(k)) {
      throw new ValidationError(`invalid label name "${k}" in role "${spec.name}"`, { hint: 'A label name has letters, digits, ".", "_", "/" and "-", e.g. env; "*" means every node' });
    }
    node_labels[k] = [...new Set(v as string[])];
  }
  const join_sessions = checkJoinRules(spec.name, spec.join_sessions);
  return { name: spec.name, logins: [...new Set(spec.logins)], node_labels, ...(join_sessions ? { join_sessions } : {}) };
}

/** A role by name (built-in or stored). */
export async function getRole(backend: Backend, name: string): Promise<RoleSpec | undefined> {
  if (typeof name !== 'string') return undefined;
  const builtin = BUILTIN_ROLES.find((r) => r.name === name);
  if (builtin) return copyRole(builtin);
  return ROLE_NAME_RE.test(name) ? getJson<RoleSpec>(backend, roleKey(name)) : undefined;
}

/** Every role: built-in first (marked `builtin: true`), then stored by name. */
export async function listRoles(backend: Backend): Promise<RoleSpec[]> {
  const stored = (await backend.getRange('roles/')).map((i) => JSON.parse(i.value) as RoleSpec);
  return [...BUILTIN_ROLES.map(copyRole), ...stored];
}

const copyRole = (r: RoleSpec): RoleSpec => ({
  ...r, logins: [...r.logins], node_labels: Object.fromEntries(Object.entries(r.node_labels).map(([k, v]) => [k, [...v]])),
  ...(r.join_sessions ? { join_sessions: r.join_sessions.map((j) => ({ roles: [...j.roles], modes: [...j.modes] })) } : {}),
});

/** Adds or replaces a role. */
export async function putRole(backend: Backend, spec: RoleSpec): Promise<RoleSpec> {
  const role = checkRole(spec);
  await backend.put(roleKey(role.name), JSON.stringify(role));
  return role;
}

/** Removes a stored role; built-in roles cannot go. */
export async function removeRole(backend: Backend, name: string): Promise<void> {
  if (BUILTIN_ROLES.some((r) => r.name === name)) throw new ValidationError(`"${name}" is a built-in role and cannot be removed`, { hint: 'Built-in roles: access, admin' });
  if (!ROLE_NAME_RE.test(name) || !(await backend.delete(roleKey(name)))) throw new NotFoundError(`role "${name}" does not exist`, { hint: 'List roles with:  postern roles ls' });
}

/** The roles of a user that still exist, for decisions (a role cannot be removed while held; this only guards a race). */
export async function existingRoles(backend: Backend, names: string[]): Promise<RoleSpec[]> {
  const out: RoleSpec[] = [];
  for (const n of names) {
    const r = await getRole(backend, n);
    if (r) out.push(r);
  }
  return out;
}

/** The roles named, in order; unknown names are an error. */
export async function resolveRoles(backend: Backend, names: string[]): Promise<RoleSpec[]> {
  const out: RoleSpec[] = [];
  for (const n of names) {
    const r = await getRole(backend, n);
    if (!r) throw new ValidationError(`unknown role "${n}"`, { hint: 'List roles with:  postern roles ls' });
    out.push(r);
  }
  return out;
}

/** The logins a role grants a user (the template expanded). */
export function roleLogins(role: RoleSpec, userLogins: string[]): string[] {
  return [...new Set(role.logins.flatMap((l) => (l === LOGINS_TEMPLATE ? userLogins : [l])))];
}

/** Every login the user's roles grant: the certificate's principals. */
export function allowedLogins(roles: RoleSpec[], userLogins: string[]): string[] {
  return [...new Set(roles.flatMap((r) => roleLogins(r, userLogins)))];
}

/**
 * True when every label rule of the role matches the node's labels: `'*': ['*']` matches
 * every node, a value list holding '*' any value of that label (the label must be there),
 * otherwise the node's value must be in the list. A role without rules matches nothing.
 */
export function roleMatchesNode(role: RoleSpec, labels: Record<string, string>): boolean {
  if (Object.keys(role.node_labels).length === 0) return false;
  for (const [k, values] of Object.entries(role.node_labels)) {
    if (k === '*') {
      if (values.includes('*')) continue;
      return false;
    }
    const v = Object.hasOwn(labels, k) ? labels[k] : undefined;
    if (v === undefined) return false;
    if (!values.includes('*') && !values.includes(v)) return false;
  }
  return true;
}

/** True when the role is `node_labels: {'*': ['*']}`: it reaches every node, and the unregistered hosts allow_unregistered names. */
export function roleIsWildcard(role: RoleSpec): boolean {
  return Object.keys(role.node_labels).length === 1 && (role.node_labels['*'] ?? []).includes('*');
}

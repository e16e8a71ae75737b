/**
 * The access decision: before the proxy dials anything for a user, auth resolves the
 * target and checks the user's roles. The lookup, in order:
 *
 *   1. a registered node name, or NAME.<cluster>
 *   2. a label selector `k=v[,k=v]` that matches exactly one node the user may reach
 *   3. a registered node's address (HOST, or HOST with its port when several share the host)
 *   4. an unregistered host, only when the cluster's `allow_unregistered` names it (host
 *      globs match the name as typed; CIDRs match an IP, or every address a name resolves
 *      to) and a role of the user reaches every node (`node_labels: {'*': ['*']}`)
 *
 * Every denial is an AccessDeniedError that names the target, and an `access.denied` audit
 * event with the reason. A decision to dial is not audited here: the proxy audits the
 * session it opens. The proxy must never be an open relay.
 */
import { lockFor } from './locks.ts';
import { LockedError, lockMessage } from '../api/locks.ts';
import { BlockList, isIP } from 'node:net';
import type { Backend } from '../storage/backend.ts';
import { AccessDeniedError, ValidationError } from '../core/errors.ts';
import type { PosternError } from '../core/errors.ts';
import { loginNotAllowedError } from '../api/refusals.ts';
import type { NodeInfo } from '../api/types.ts';
import type { AccessDecision, AccessRequest, RoleSpec } from '../api/auth-types.ts';
import type { NodeRecord } from './node-registry.ts';
import { getNode, listNodeRecords, nodeInfo, splitAddr } from './node-registry.ts';
import { formatLabels, isSelector, parseSelector as parseLabelSelector, selectorMatches } from '../api/labels.ts';
import { existingRoles, roleLogins, roleMatchesNode, roleIsWildcard } from './role-store.ts';
import { getUser } from './users.ts';
import type { UserRecord } from './users.ts';
import { getSettings } from './settings.ts';
import { AuditType } from '../api/audit.ts';
import type { NewAuditEvent } from '../api/audit.ts';

/** What the decision needs from auth. */
export interface AccessContext {
  backend: Backend;
  clusterName: string;
  audit(event: NewAuditEvent): Promise<void>;
  /** What dates locks' expiry; the system's time when absent. */
  now?: () => Date;
}

/** The most addresses a name may resolve to in one request (a sanity bound, not a policy). */
const MAX_RESOLVED = 64;
const HOST_NAME_RE = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/i;

/** True when a host glob matches: `*` any run of characters (dots too), `?` one; case-insensitive, as OpenSSH's patterns. */
export function globMatches(pattern: string, host: string): boolean {
  const body = pattern.split('').map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`, 'i').test(host);
}

/** True when a pattern of allow_unregistered is a CIDR rather than a host glob. */
export function isCidrPattern(pattern: string): boolean {
  return pattern.includes('/');
}

/** An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) as the IPv4 address it stands for. */
function unmapIp(ip: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  return m ? m[1] : ip;
}

/** True when an IP address is inside a CIDR (`10.0.0.0/8`, `::1/128`); false for anything malformed. */
export function cidrContains(cidr: string, ip: string): boolean {
  const m = /^(.+)\/(\d{1,3})$/.exec(cidr);
  if (!m) return false;
  const net = m[1];
  const fam = isIP(net);
  const addr = unmapIp(ip);
  if (!fam || fam !== isIP(addr)) return false;
  const type = fam === 4 ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  try {
    list.addSubnet(net, Number(m[2]), type);
    return list.check(addr, type);
  } catch {
    return false;
  }
}

/** True when allow_unregistered names `host` (a host name or an IP) by a glob, or an IP by a CIDR. */
export function allowedUnregistered(patterns: string[], host: string): boolean {
  return patterns.some((p) => (isCidrPattern(p) ? isIP(host) !== 0 && cidrContains(p, host) : globMatches(p, host)));
}

/**
 * A label selector (`env=prod` or `env=prod,team=web`) as labels, or undefined when the
 * target is not one (it has no "="). A malformed selector is a ValidationError.
 */
export function parseSelector(target: string): Record<string, string> | undefined {
  return isSelector(target) ? parseLabelSelector(target) : undefined;
}

/** True when a node has every label of a selector, with the same value. */
export { selectorMatches };

/** The nodes a user's roles reach. */
export function reachable(nodes: NodeRecord[], roles: RoleSpec[]): NodeRecord[] {
  return nodes.filter((n) => roles.some((r) => roleMatchesNode(r, n.labels)));
}

const labelText = formatLabels;

/**
 * Lists nodes: for a user only those some role of theirs matches (none for an unknown
 * user), for an admin all; filtered by exact labels and a case-insensitive search over the
 * name, the address and the labels.
 */
export async function listNodesFor(ctx: AccessContext, req: { user?: string; labels?: Record<string, string>; search?: string }): Promise<NodeInfo[]> {
  const labels = req.labels === undefined ? {} : checkSelector(req.labels);
  if (req.search !== undefined && typeof req.search !== 'string') throw new ValidationError('search must be text');
  let nodes = await listNodeRecords(ctx.backend);
  if (req.user !== undefined) {
    const user = typeof req.user === 'string' ? await getUser(ctx.backend, req.user) : undefined;
    if (!user) return [];
    nodes = reachable(nodes, await existingRoles(ctx.backend, user.roles));
  }
  const search = (req.search ?? '').trim().toLowerCase();
  return nodes
    .filter((n) => selectorMatches(labels, n.labels))
    .filter((n) => !search || [n.name, n.addr, ...Object.entries(n.labels).map(([k, v]) => `${k}=${v}`)].some((s) => s.toLowerCase().includes(search)))
    .map(nodeInfo);
}

function checkSelector(labels: unknown): Record<string, string> {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels) || Object.values(labels).some((v) => typeof v !== 'string')) {
    throw new ValidationError('labels must be an object of NAME: VALUE');
  }
  return labels as Record<string, string>;
}

/** One access request being decided: the request, checked, and who asks. */
interface Decision {
  ctx: AccessContext;
  req: AccessRequest;
  target: string;
  user: UserRecord;
  roles: RoleSpec[];
  principals: string[];
  deny(reason: string | PosternError, hint?: string): Promise<never>;
}

/** Decides whether the proxy may dial `req.target` for the user, and where. */
export async function authorizeSsh(ctx: AccessContext, req: AccessRequest): Promise<AccessDecision> {
  if (typeof req !== 'object' || req === null) throw new ValidationError('an access request is required');
  if (typeof req.user !== 'string' || req.user === '') throw new ValidationError('user is required');
  if (req.login !== undefined && typeof req.login !== 'string') throw new ValidationError('login must be text');
  if (req.port !== undefined && req.port !== null && !(Number.isInteger(req.port) && req.port >= 0 && req.port <= 65535)) throw new ValidationError('port must be a number from 0 to 65535');
  const target = typeof req.target === 'string' ? req.target.trim() : '';
  const deny = async (refusal: string | PosternError, hint?: string): Promise<never> => {
    const reason = typeof refusal === 'string' ? refusal : refusal.message;
    await ctx.audit({
      type: AuditType.accessDenied, user: req.user, addr: req.clientAddr, clientAddr: req.clientAddr, success: false,
      target, port: req.port, login: req.login, via: req.via, reason, message: reason,
    });
    throw typeof refusal === 'string' ? new AccessDeniedError(reason, hint ? { hint } : {}) : refusal;
  };
  if (!target) return deny('access denied: no target host given', 'Name a node:  postern ls  lists the ones you may reach');
  if (target.length > 1024 || /[\s\u0000-\u001f\u007f]/.test(target)) return deny(`access to "${target.slice(0, 64)}" denied: not a node name, label selector or host`, 'List the nodes you may reach with:  postern ls');

  const user = await getUser(ctx.backend, req.user);
  if (!user) return deny(`access to "${target}" denied: user "${req.user}" does not exist any more`, 'Ask an admin to add you again, then log in:  postern login');
  const d: Decision = {
    ctx, req, target, user, deny,
    roles: await existingRoles(ctx.backend, user.roles),
    principals: Array.isArray(req.principals) ? req.principals.filter((p): p is string => typeof p === 'string') : [],
  };

  const node = (await byName(d)) ?? (await bySelector(d)) ?? (await byAddress(d));
  // Locks (locks.ts) before any other decision: the user, their roles, the login (or, when the proxy cannot know it, the certificate's logins), the node.
  const lock = await lockFor(ctx.backend, {
    user: user.name, roles: user.roles, node: node?.name ?? target.toLowerCase(),
    ...(req.login ? { login: req.login } : { principals: d.principals }),
  }, ctx.now?.() ?? new Date());
  if (lock) return deny(new LockedError(lockMessage(lock)));
  return node ? decideNode(d, node) : decideUnregistered(d);
}

/** 1. A registered name, or NAME.<cluster>. */
async function byName(d: Decision): Promise<NodeRecord | undefined> {
  const t = d.target.toLowerCase().replace(/\.$/, '');
  const suffix = `.${d.ctx.clusterName}`.toLowerCase();
  return (await getNode(d.ctx.backend, t)) ?? (t.endsWith(suffix) ? getNode(d.ctx.backend, t.slice(0, -suffix.length)) : undefined);
}

/** 2. A label selector matching exactly one node the user may reach. */
async function bySelector(d: Decision): Promise<NodeRecord | undefined> {
  let selector: Record<string, string> | undefined;
  try {
    selector = parseSelector(d.target);
  } catch (err) {
    return d.deny(`access to "${d.target}" denied: ${(err as Error).message}`, 'A selector looks like env=prod or env=prod,team=web');
  }
  if (!selector) return undefined;
  const matching = reachable(await listNodeRecords(d.ctx.backend), d.roles).filter((n) => selectorMatches(selector, n.labels));
  if (matching.length === 0) return d.deny(`no node you may reach matches ${d.target}`, 'List the nodes you may reach with:  postern ls');
  if (matching.length > 1) {
    return d.deny(`${d.target} matches ${matching.length} nodes: ${matching.map((n) => n.name).join(', ')}; name one of them`,
      `To run a command on all of them:  postern ssh LOGIN@${d.target} COMMAND`);
  }
  return matching[0];
}

/** 3. A registered node's address: the one node at that host, or the one at that host and port. */
async function byAddress(d: Decision): Promise<NodeRecord | undefined> {
  const host = d.target.replace(/^\[(.*)\]$/, '$1').toLowerCase().replace(/\.$/, '');
  const at = (await listNodeRecords(d.ctx.backend)).filter((n) => splitAddr(n.addr).host.toLowerCase() === host);
  if (at.length <= 1) return at[0];
  const exact = at.filter((n) => splitAddr(n.addr).port === (d.req.port || 22));
  if (exact.length === 1) return exact[0];
  const names = reachable(at, d.roles).map((n) => n.name);
  return d.deny(`access to "${d.target}" denied: ${at.length} nodes are registered at that host${names.length ? ` (${names.join(', ')})` : ''}; name one of them`,
    'List the nodes you may reach with:  postern ls');
}

/** A registered node: some role must match its labels, and the login (when known) must be one such a role grants. */
async function decideNode(d: Decision, node: NodeRecord): Promise<AccessDecision> {
  const { req, user } = d;
  const matching = d.roles.filter((r) => roleMatchesNode(r, node.labels));
  if (matching.length === 0) {
    const n = Object.keys(node.labels).length;
    const what = n === 0 ? 'a node without labels' : `${n === 1 ? 'label' : 'labels'} ${labelText(node.labels)}`;
    return d.deny(`access to node "${node.name}" denied: no role of ${user.name} allows ${what}`, 'List the nodes you may reach with:  postern ls');
  }
  if (req.login !== undefined) {
    if (!d.principals.includes(req.login)) return d.deny(loginNotAllowedError(req.login, d.principals));
    const here = [...new Set(matching.flatMap((r) => roleLogins(r, user.logins)))];
    if (!here.includes(req.login)) {
      return d.deny(`access to node "${node.name}" denied: no role of ${user.name} allows login "${req.login}" there`,
        here.length ? `Logins allowed on ${node.name}: ${here.join(', ')}` : 'Ask an admin for a role that allows a login on this node');
    }
  }
  const { host, port } = splitAddr(node.addr);
  // OpenSSH always sends a port, 22 unless told otherwise: 22 (or none) means "the node's own port".
  if (req.port && req.port !== 22 && req.port !== port) {
    return d.deny(`access to node "${node.name}" denied: it is registered at port ${port}, not ${req.port}`, 'Leave the port out (or use 22): the proxy dials the registered address');
  }
  return { kind: 'dial', host, port, node: nodeInfo(node) };
}

/** An unregistered host: allow_unregistered must name it, and a role of the user must reach every node. */
async function decideUnregistered(d: Decision): Promise<AccessDecision> {
  const { req, user } = d;
  const host = d.target.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  const notAllowed = (extra = ''): Promise<never> => d.deny(`unknown node "${d.target}": it is not registered and not allowed by allow_unregistered${extra}`,
    'List the nodes you may reach with:  postern ls; an admin registers nodes with  postern nodes add');
  const family = isIP(host);
  if (!family && !HOST_NAME_RE.test(host)) return notAllowed();
  const patterns = (await getSettings(d.ctx.backend)).allow_unregistered;
  const wildcard = d.roles.filter(roleIsWildcard);

  const checkRolesAndLogin = async (): Promise<void> => {
    if (wildcard.length === 0) {
      await d.deny(`access to unregistered host "${d.target}" denied: no role of ${user.name} reaches every node`,
        "Unregistered hosts need a role with node_labels {'*': ['*']}; or ask an admin to register the node:  postern nodes add");
    }
    if (req.login !== undefined) {
      if (!d.principals.includes(req.login)) await d.deny(loginNotAllowedError(req.login, d.principals));
      if (!wildcard.some((r) => roleLogins(r, user.logins).includes(req.login!))) {
        await d.deny(`access to host "${d.target}" denied: no role of ${user.name} that reaches every node allows login "${req.login}"`);
      }
    }
  };

  let dialHost = host;
  const byGlob = patterns.filter((p) => !isCidrPattern(p)).some((g) => globMatches(g, host));
  if (!byGlob) {
    const cidrs = patterns.filter(isCidrPattern);
    if (family) {
      if (!cidrs.some((c) => cidrContains(c, host))) return notAllowed();
    } else {
      if (cidrs.length === 0) return notAllowed();
      // Only CIDRs could allow a name: check everything else first, so the proxy resolves it only when that can help.
      await checkRolesAndLogin();
      const resolved = req.resolved;
      if (resolved === undefined || resolved === null) return { kind: 'resolve' };
      if (!Array.isArray(resolved) || resolved.length === 0 || resolved.length > MAX_RESOLVED || resolved.some((a) => typeof a !== 'string' || !isIP(a))) {
        return notAllowed(' (it did not resolve to IP addresses)');
      }
      const outside = resolved.filter((ip) => !cidrs.some((c) => cidrContains(c, ip)));
      if (outside.length > 0) return notAllowed(` (it resolves to ${outside.join(', ')})`);
      dialHost = resolved[0];
    }
  }
  await checkRolesAndLogin();
  return { kind: 'dial', host: dialHost, port: req.port || 22 };
}

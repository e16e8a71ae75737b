/**
 * The access decision: before the proxy dials anything for a user, auth resolves the
 * target (registered name, NAME.<cluster>, label selector, or an unregistered host the
 * cluster allows) and checks the user's roles. Every denial is an audit event with the
 * reason. The proxy must never be an open relay.
 */
import { BlockList, isIP } from 'node:net';
import type { Backend } from '../storage/backend.ts';
import { AccessDeniedError } from '../core/errors.ts';
import { parseHostPort } from '../core/text.ts';
import type { AccessDecision, AccessRequest, NodeInfo, RoleSpec } from './auth-client.ts';
import type { NodeRecord } from './node-registry.ts';
import { getNode, listNodeRecords, nodeInfo, parseLabels } from './node-registry.ts';
import { resolveRoles, roleLogins, roleMatchesNode, roleIsWildcard } from './role-store.ts';
import { getUser } from './users.ts';
import { getSettings } from './settings.ts';
import type { AuditEvent } from './audit.ts';

/** What the decision needs from auth. */
export interface AccessContext {
  backend: Backend;
  clusterName: string;
  audit(event: Omit<AuditEvent, 'time'>): Promise<void>;
}

/** True when a host glob (`*`, `?`; case-insensitive) matches. */
export function globMatches(pattern: string, host: string): boolean {
  const re = new RegExp(`^${pattern.split('').map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('')}$`, 'i');
  return re.test(host);
}

/** True when an IP address is inside a CIDR (`10.0.0.0/8`, `::1/128`). */
export function cidrContains(cidr: string, ip: string): boolean {
  const m = /^(.+)\/(\d{1,3})$/.exec(cidr);
  if (!m) return false;
  const fam = isIP(m[1]);
  const ipFam = isIP(ip);
  if (!fam || fam !== ipFam) return false;
  const list = new BlockList();
  try {
    list.addSubnet(m[1], Number(m[2]), fam === 4 ? 'ipv4' : 'ipv6');
  } catch {
    return false;
  }
  return list.check(ip, fam === 4 ? 'ipv4' : 'ipv6');
}

const isCidr = (p: string): boolean => p.includes('/');

/** The nodes a user's roles reach. */
export function reachable(nodes: NodeRecord[], roles: RoleSpec[]): NodeRecord[] {
  return nodes.filter((n) => roles.some((r) => roleMatchesNode(r, n.labels)));
}

/** Lists nodes, for a user only those their roles reach, filtered by labels and text. */
export async function listNodesFor(ctx: AccessContext, req: { user?: string; labels?: Record<string, string>; search?: string }): Promise<NodeInfo[]> {
  let nodes = await listNodeRecords(ctx.backend);
  if (req.user !== undefined) {
    const user = await getUser(ctx.backend, req.user);
    if (!user) return [];
    nodes = reachable(nodes, await resolveRoles(ctx.backend, user.roles));
  }
  const labels = req.labels ?? {};
  const search = (req.search ?? '').toLowerCase();
  return nodes
    .filter((n) => Object.entries(labels).every(([k, v]) => n.labels[k] === v))
    .filter((n) => !search || [n.name, n.addr, ...Object.entries(n.labels).map(([k, v]) => `${k}=${v}`)].some((s) => s.toLowerCase().includes(search)))
    .map(nodeInfo);
}

/** Decides whether the proxy may dial `req.target` for the user, and where. */
export async function authorizeSsh(ctx: AccessContext, req: AccessRequest): Promise<AccessDecision> {
  const deny = async (reason: string, hint?: string): Promise<never> => {
    await ctx.audit({ type: 'access.denied', user: req.user, addr: req.clientAddr, success: false, target: req.target, port: req.port, login: req.login, via: req.via, message: reason });
    throw new AccessDeniedError(reason, hint ? { hint } : {});
  };
  const target = String(req.target ?? '');
  if (!target || target.length > 253) return deny('no target host given');
  const user = await getUser(ctx.backend, req.user);
  if (!user) return deny(`user "${req.user}" does not exist any more`, 'Ask an admin; then log in again');
  const roles = await resolveRoles(ctx.backend, user.roles);
  const principals = Array.isArray(req.principals) ? req.principals : [];
  if (req.login !== undefined && !principals.includes(req.login)) {
    return deny(`login "${req.login}" is not in your certificate (it has: ${principals.join(', ')})`, 'Use one of those logins, or ask an admin for a role that grants this one');
  }

  const suffix = `.${ctx.clusterName}`.toLowerCase();
  const name = target.toLowerCase().endsWith(suffix) ? target.slice(0, -suffix.length) : target;
  let node = await getNode(ctx.backend, name);
  if (!node && target.includes('=')) {
    let selector: Record<string, string>;
    try { selector = parseLabels(target); } catch { return deny(`invalid label selector "${target}"`, 'A selector looks like env=prod or env=prod,team=web'); }
    const matching = reachable(await listNodeRecords(ctx.backend), roles).filter((n) => Object.entries(selector).every(([k, v]) => n.labels[k] === v));
    if (matching.length === 0) return deny(`no node you may reach matches ${target}`, 'List the nodes you may reach with:  postern ls');
    if (matching.length > 1) {
      return deny(`${target} matches ${matching.length} nodes: ${matching.map((n) => n.name).join(', ')}; name one of them`, 'To run a command on all of them:  postern ssh LOGIN@' + target + ' COMMAND');
    }
    node = matching[0];
  }

  if (node) {
    const matching = roles.filter((r) => roleMatchesNode(r, node.labels));
    const labelText = Object.entries(node.labels).map(([k, v]) => `${k}=${v}`).join(',') || 'no labels';
    if (matching.length === 0) return deny(`access to node "${node.name}" denied: no role of ${user.name} allows its labels (${labelText})`, 'List the nodes you may reach with:  postern ls');
    if (req.login !== undefined && !matching.some((r) => roleLogins(r, user.logins).includes(req.login!))) {
      return deny(`access to node "${node.name}" denied: no role of ${user.name} allows login "${req.login}" there`);
    }
    const { host, port } = parseHostPort(node.addr, 22);
    // OpenSSH always sends a port; 22 (the default) means "the node's own port".
    if (req.port && req.port !== 22 && req.port !== port) {
      return deny(`node "${node.name}" is registered at port ${port}, not ${req.port}`);
    }
    return { kind: 'dial', host, port, node: nodeInfo(node) };
  }

  // Not registered: only what allow_unregistered names, and only for roles that reach every node.
  const patterns = (await getSettings(ctx.backend)).allow_unregistered;
  const notAllowed = (): Promise<never> => deny(`unknown node "${target}": it is not registered and not allowed by allow_unregistered`, 'List the nodes you may reach with:  postern ls');
  const globs = patterns.filter((p) => !isCidr(p));
  const cidrs = patterns.filter(isCidr);
  let dialHost = target;
  if (!globs.some((g) => globMatches(g, target))) {
    if (isIP(target)) {
      if (!cidrs.some((c) => cidrContains(c, target))) return notAllowed();
    } else {
      if (cidrs.length === 0) return notAllowed();
      if (!req.resolved || req.resolved.length === 0) return { kind: 'resolve' };
      if (!req.resolved.every((ip) => cidrs.some((c) => cidrContains(c, ip)))) return notAllowed();
      dialHost = req.resolved[0];
    }
  }
  if (!roles.some(roleIsWildcard)) return deny(`access to unregistered host "${target}" denied: no role of ${user.name} reaches every node`);
  return { kind: 'dial', host: dialHost, port: req.port || 22 };
}

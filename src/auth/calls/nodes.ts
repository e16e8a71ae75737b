/** Nodes and access: the node registry, roles, and the decision before every dial. */
import { ConflictError, ValidationError } from '../../core/errors.ts';
import { parseAuthorizedKey, formatAuthorizedKey } from '../../ssh/keys.ts';
import { formatCertificate } from '../../ssh/certs.ts';
import type { AddNodeResult } from '../../api/auth-types.ts';
import { AuditType } from '../../api/audit.ts';
import * as nodes from '../node-registry.ts';
import * as roleStore from '../role-store.ts';
import * as users from '../users.ts';
import { authorizeSsh, listNodesFor } from '../access-policy.ts';
import type { AccessContext } from '../access-policy.ts';
import { sshCaPublicKey, signWithCa } from '../ssh-ca.ts';
import { str } from '../args.ts';
import type { CallContext, Handlers } from './context.ts';

/** Node host certificates live a year; `nodes renew` issues a new one. */
export const NODE_CERT_TTL = 365 * 86_400_000;

/** The calls of this group. */
export type NodeCallName = 'addNode' | 'listNodes' | 'updateNode' | 'removeNode' | 'renewNode' | 'upsertRole' | 'listRoles' | 'deleteRole' | 'authorizeSsh';

/** The handlers of nodes, roles and the access decision. */
export function nodeCalls(ctx: CallContext): Handlers<NodeCallName> {
  const { backend, clock, clusterName } = ctx;
  const access: AccessContext = { backend, clusterName, audit: (e) => ctx.audit(e), now: () => clock.now() };

  /** Signs a node's host certificate (a year; `nodes renew` makes a new one) and says what sshd needs. */
  const hostCertFor = async (rec: nodes.NodeRecord): Promise<AddNodeResult> => {
    const key = parseAuthorizedKey(rec.hostPublicKey);
    const principals = nodes.hostPrincipals(rec.name, rec.addr, clusterName);
    const cert = await signWithCa(backend, 'host', {
      subjectPublicKey: key.wire, keyId: `node:${rec.name}`, principals, ttlMs: NODE_CERT_TTL, now: clock.now(),
    });
    return { node: nodes.nodeInfo(rec), hostCertificate: formatCertificate(cert, rec.name), userCaKeys: [await sshCaPublicKey(backend, 'user')] };
  };

  return {
    async addNode(id, req) {
      const name = nodes.checkNodeName(req.name);
      const addr = nodes.normaliseAddr(str(req.addr, 'addr'));
      const labels = nodes.checkLabels(req.labels ?? {});
      let hostPublicKey: string;
      try {
        const k = parseAuthorizedKey(str(req.hostPublicKey, 'hostPublicKey'));
        if (!/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa)$/.test(k.type)) throw new Error(k.type);
        hostPublicKey = formatAuthorizedKey(k.wire);
      } catch {
        throw new ValidationError('the host key must be an OpenSSH public key (ed25519, ecdsa or rsa), not a certificate or a private key', {
          hint: 'Pass the node\'s /etc/ssh/ssh_host_ed25519_key.pub',
        });
      }
      if (await nodes.getNode(backend, name)) throw nodes.nodeExists(name);
      const rec: nodes.NodeRecord = { name, addr, labels, hostPublicKey, createdAt: clock.now().toISOString() };
      const result = await hostCertFor(rec);
      await nodes.createNode(backend, rec);
      await ctx.audit({ type: AuditType.nodeAdded, user: id.name, success: true, node: name, addr, labels, principals: nodes.hostPrincipals(name, addr, clusterName) });
      return result;
    },

    async listNodes(id, req) {
      // A proxy lists on behalf of a user, never the whole registry.
      if (id.role === 'proxy' && typeof req.user !== 'string') throw new ValidationError('a proxy must name the user whose nodes it lists');
      return listNodesFor(access, req);
    },

    async updateNode(id, req) {
      const labels = nodes.checkLabels(req.labels ?? {});
      const next = await nodes.modifyNode(backend, str(req.name, 'name'), (n) => ({ ...n, labels }));
      await ctx.audit({ type: AuditType.nodeUpdated, user: id.name, success: true, node: next.name, labels });
      return nodes.nodeInfo(next);
    },

    async removeNode(id, req) {
      const name = str(req.name, 'name');
      await nodes.deleteNode(backend, name);
      await ctx.audit({ type: AuditType.nodeRemoved, user: id.name, success: true, node: name.toLowerCase() });
    },

    async renewNode(id, req) {
      const rec = await nodes.getNode(backend, str(req.name, 'name'));
      if (!rec) throw nodes.unknownNode(req.name);
      const result = await hostCertFor(rec);
      await ctx.audit({ type: AuditType.nodeRenewed, user: id.name, success: true, node: rec.name });
      return result;
    },

    async upsertRole(id, req) {
      const role = await roleStore.putRole(backend, req);
      await ctx.audit({ type: AuditType.roleChanged, user: id.name, success: true, role: role.name, logins: role.logins, node_labels: role.node_labels });
      return role;
    },

    async listRoles() {
      return roleStore.listRoles(backend);
    },

    async deleteRole(id, req) {
      const name = str(req.name, 'name');
      if (roleStore.BUILTIN_ROLES.some((r) => r.name === name)) return roleStore.removeRole(backend, name);
      const holders = (await users.listUsers(backend)).filter((u) => u.roles.includes(name)).map((u) => u.name);
      if (holders.length > 0) {
        throw new ConflictError(`role "${name}" is still held by ${holders.join(', ')}`, {
          hint: `Remove ${holders.length === 1 ? 'that user' : 'those users'} first (postern users rm NAME), then remove the role`,
        });
      }
      await roleStore.removeRole(backend, name);
      await ctx.audit({ type: AuditType.roleRemoved, user: id.name, success: true, role: name });
    },

    async authorizeSsh(_id, req) {
      return authorizeSsh(access, req);
    },
  };
}

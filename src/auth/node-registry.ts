/**
 * The node registry: OpenSSH servers the proxy may reach, by name, address and labels,
 * each with a host certificate from the cluster's host CA. Stored under `nodes/<name>`.
 */
import { isIP } from 'node:net';
import type { Backend } from '../storage/backend.ts';
import { getJson } from '../storage/backend.ts';
import { AlreadyExistsError, NotFoundError, ValidationError } from '../core/errors.ts';
import { parseHostPort, formatHostPort } from '../core/text.ts';
import type { NodeInfo } from '../api/types.ts';

/** A node as stored: its public info and its host key. */
export interface NodeRecord extends NodeInfo {
  hostPublicKey: string;
  createdAt: string;
}

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const DNS_NAME_RE = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;
const nodeKey = (name: string): string => `nodes/${name.toLowerCase()}`;

/**
 * Checks a node name and returns it in lower case: a DNS label, so NAME.<cluster> is a host
 * name, and lower case because OpenSSH lower-cases the host before it matches a host
 * certificate's principals.
 */
export function checkNodeName(name: unknown): string {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    throw new ValidationError(`invalid node name "${String(name)}"`, { hint: 'Use letters, digits and "-", like a DNS label: web1, db-eu-2' });
  }
  return name.toLowerCase();
}

/** Labels are read and checked by the one grammar of the API (src/api/labels.ts). */
import { checkLabels } from '../api/labels.ts';
export { checkLabels, parseLabels } from '../api/labels.ts';

/**
 * Normalises a node address to HOST:PORT (default port 22; IPv6 in brackets, a bare IPv6
 * address is taken whole). Host names are lower-cased, as OpenSSH does.
 */
export function normaliseAddr(addr: string): string {
  const { host, port } = isIP(addr) === 6 ? { host: addr, port: 22 } : parseHostPort(addr, 22);
  if (port === 0) throw new ValidationError(`invalid node address "${addr}": the port must not be 0`, { hint: 'Give the port sshd listens on, e.g. 10.0.0.5:22' });
  if (!isIP(host) && !DNS_NAME_RE.test(host)) {
    throw new ValidationError(`invalid node address "${addr}": "${host}" is neither an IP address nor a host name`, { hint: 'Use HOST:PORT, e.g. 10.0.0.5:22 or web1.internal:22' });
  }
  return formatHostPort(isIP(host) ? host : host.toLowerCase().replace(/\.$/, ''), port);
}

/** The host and port of a stored (normalised) address. */
export function splitAddr(addr: string): { host: string; port: number } {
  return parseHostPort(addr, 22);
}

/** A node's host certificate principals: its name, NAME.<cluster>, and its address's host. */
export function hostPrincipals(name: string, addr: string, clusterName: string): string[] {
  return [...new Set([name, `${name}.${clusterName}`.toLowerCase(), splitAddr(addr).host])];
}

/** Reads a node by name (case-insensitive). */
export async function getNode(backend: Backend, name: string): Promise<NodeRecord | undefined> {
  if (typeof name !== 'string' || !NAME_RE.test(name)) return undefined;
  return getJson<NodeRecord>(backend, nodeKey(name));
}

/** Every node, by name. */
export async function listNodeRecords(backend: Backend): Promise<NodeRecord[]> {
  return (await backend.getRange('nodes/')).map((i) => JSON.parse(i.value) as NodeRecord);
}

/** Registers a node; AlreadyExistsError when the name is taken. */
export async function createNode(backend: Backend, rec: NodeRecord): Promise<void> {
  checkNodeName(rec.name);
  checkLabels(rec.labels);
  try {
    await backend.create(nodeKey(rec.name), JSON.stringify(rec));
  } catch (err) {
    if (err instanceof AlreadyExistsError) throw nodeExists(rec.name);
    throw err;
  }
}

/** The error for a name that is taken. */
export function nodeExists(name: string): AlreadyExistsError {
  return new AlreadyExistsError(`node "${name}" is already registered`, {
    hint: `Change its labels with  postern nodes update ${name} --labels …,  renew its certificate with  postern nodes renew ${name},  or remove it with  postern nodes rm ${name}`,
  });
}

/** Changes a node's record with a function, atomically; NotFoundError when it is not registered. */
export async function modifyNode(backend: Backend, name: string, change: (n: NodeRecord) => NodeRecord): Promise<NodeRecord> {
  for (let i = 0; i < 20; i++) {
    const item = NAME_RE.test(name) ? await backend.get(nodeKey(name)) : undefined;
    if (!item) throw unknownNode(name);
    const next = change(JSON.parse(item.value) as NodeRecord);
    try {
      await backend.compareAndSwap(item.key, item.revision, JSON.stringify(next));
      return next;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_POSTERN_CONFLICT') throw err;
    }
  }
  throw new Error(`could not update node "${name}": too many concurrent changes`);
}

/** Removes a node; NotFoundError when it is not registered. */
export async function deleteNode(backend: Backend, name: string): Promise<void> {
  if (!NAME_RE.test(name) || !(await backend.delete(nodeKey(name)))) throw unknownNode(name);
}

/** The error for a name that is not registered. */
export function unknownNode(name: string): NotFoundError {
  return new NotFoundError(`node "${name}" is not registered`, { hint: 'List nodes with:  postern nodes ls' });
}

/** The public view of a node. */
export function nodeInfo(rec: NodeRecord): NodeInfo {
  return { name: rec.name, addr: rec.addr, labels: { ...rec.labels } };
}

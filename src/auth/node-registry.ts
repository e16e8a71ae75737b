/**
 * The node registry: OpenSSH servers the proxy may reach, by name, address and labels,
 * each with a host certificate from the cluster's host CA.
 */
import type { Backend } from '../storage/backend.ts';
import { getJson } from '../storage/backend.ts';
import { AlreadyExistsError, NotFoundError, ValidationError } from '../core/errors.ts';
import { parseHostPort, formatHostPort } from '../core/text.ts';
import type { NodeInfo } from './auth-client.ts';

/** A node as stored: its public info and its host key. */
export interface NodeRecord extends NodeInfo {
  hostPublicKey: string;
  createdAt: string;
}

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const LABEL_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
const LABEL_VALUE_RE = /^[A-Za-z0-9._:/-]{1,63}$/;
const nodeKey = (name: string): string => `nodes/${name.toLowerCase()}`;

/** Checks a node name (a DNS label, so NAME.<cluster> is a host name). */
export function checkNodeName(name: string): void {
  if (!NAME_RE.test(name)) throw new ValidationError(`invalid node name "${name}"`, { hint: 'Use letters, digits and "-", like a DNS label: web1, db-eu-2' });
}

/** Checks labels; throws a ValidationError naming the bad one. */
export function checkLabels(labels: Record<string, string>): void {
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_KEY_RE.test(k)) throw new ValidationError(`invalid label name "${k}"`);
    if (!LABEL_VALUE_RE.test(v)) throw new ValidationError(`invalid value "${v}" of label "${k}"`);
  }
}

/** Parses `k=v,k2=v2` into labels. */
export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0) throw new ValidationError(`invalid label "${part}": expected NAME=VALUE`, { hint: 'e.g. --labels env=prod,team=web' });
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  checkLabels(out);
  return out;
}

/** Normalises a node address to HOST:PORT (default port 22). */
export function normaliseAddr(addr: string): string {
  const { host, port } = parseHostPort(addr, 22);
  if (port === 0) throw new ValidationError(`invalid node address "${addr}": the port must not be 0`);
  return formatHostPort(host, port);
}

/** Reads a node by name (case-insensitive). */
export async function getNode(backend: Backend, name: string): Promise<NodeRecord | undefined> {
  if (!NAME_RE.test(name)) return undefined;
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
    if (err instanceof AlreadyExistsError) {
      throw new AlreadyExistsError(`node "${rec.name}" is already registered`, { hint: `Change it with  postern nodes update ${rec.name} --labels …  or remove it with  postern nodes rm ${rec.name}` });
    }
    throw err;
  }
}

/** Replaces a node's record; NotFoundError when it is not registered. */
export async function saveNode(backend: Backend, rec: NodeRecord): Promise<void> {
  try {
    await backend.update(nodeKey(rec.name), JSON.stringify(rec));
  } catch (err) {
    if (err instanceof NotFoundError) throw unknownNode(rec.name);
    throw err;
  }
}

/** Removes a node; NotFoundError when it is not registered. */
export async function deleteNode(backend: Backend, name: string): Promise<void> {
  if (!(await backend.delete(nodeKey(name)))) throw unknownNode(name);
}

/** The error for a name that is not registered. */
export function unknownNode(name: string): NotFoundError {
  return new NotFoundError(`node "${name}" is not registered`, { hint: 'List nodes with:  postern nodes ls' });
}

/** The public view of a node. */
export function nodeInfo(rec: NodeRecord): NodeInfo {
  return { name: rec.name, addr: rec.addr, labels: rec.labels };
}

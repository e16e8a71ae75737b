/**
 * The cluster's identity on first start: its name, the user and host SSH CAs and the TLS
 * CA, written in one atomic batch of creates. Several auth servers may start together on
 * an empty database: each makes candidate CAs, exactly one batch wins, and every other
 * server gets AlreadyExistsError and uses what the winner stored (everything reads the CAs
 * from the backend, never from the candidates). A cluster therefore never has two CAs of
 * one kind, nor half a set after a crash.
 */
import type { AtomicOp, Backend } from '../storage/backend.ts';
import { AlreadyExistsError } from '../core/errors.ts';
import { newSshCaValue, sshCaKey } from './ssh-ca.ts';
import { createTlsCa } from './tls-ca.ts';

/** The key of the TLS CA. */
export const TLS_CA_KEY = 'cas/tls';
/** The key of the cluster's name. */
export const CLUSTER_NAME_KEY = 'cluster/name';

/** Creates whatever of the name and CAs is missing; returns true when this call created them. */
export async function ensureClusterCas(backend: Backend, clusterName: string, now: Date): Promise<boolean> {
  const [name, user, host, tls] = await Promise.all([CLUSTER_NAME_KEY, sshCaKey('user'), sshCaKey('host'), TLS_CA_KEY].map((k) => backend.get(k)));
  if (name && user && host && tls) return false;
  const ops: AtomicOp[] = [];
  if (!name) ops.push({ kind: 'create', key: CLUSTER_NAME_KEY, value: clusterName });
  if (!user) ops.push({ kind: 'create', key: sshCaKey('user'), value: newSshCaValue('user', clusterName) });
  if (!host) ops.push({ kind: 'create', key: sshCaKey('host'), value: newSshCaValue('host', clusterName) });
  if (!tls) ops.push({ kind: 'create', key: TLS_CA_KEY, value: JSON.stringify(await createTlsCa(clusterName, now)) });
  try {
    await backend.atomic(ops);
    return true;
  } catch (err) {
    if (err instanceof AlreadyExistsError) return false; // another auth server created them first
    throw err;
  }
}

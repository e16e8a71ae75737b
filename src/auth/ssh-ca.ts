/**
 * The cluster's SSH certificate authorities: the user CA (sshd's TrustedUserCAKeys) and
 * the host CA (clients' @cert-authority). Both ed25519, created on first start, kept in
 * the backend, and never leave auth.
 */
import type { Backend } from '../storage/backend.ts';
import { getJson } from '../storage/backend.ts';
import { generateKeyPair, encodePrivateKeyOpenSSH, parsePrivateKeyOpenSSH, formatAuthorizedKey } from '../ssh/keys.ts';
import type { SshKeyPair } from '../ssh/keys.ts';
import { signCertificate } from '../ssh/certs.ts';
import type { SshCertificate } from '../ssh/certs.ts';
import { AlreadyExistsError, ConflictError } from '../core/errors.ts';

/** Which CA. */
export type CaType = 'user' | 'host';

interface StoredCa {
  privateKey: string;
  publicKey: string;
}

/** Where a CA is kept in the backend. */
export const sshCaKey = (type: CaType): string => `cas/ssh/${type}`;
const caKey = sshCaKey;

/** Makes a new CA key pair, as the value stored under sshCaKey(type). */
export function newSshCaValue(type: CaType, clusterName: string): string {
  const pair = generateKeyPair();
  const comment = `postern ${type} CA ${clusterName}`;
  const stored: StoredCa = { privateKey: encodePrivateKeyOpenSSH(pair, comment), publicKey: formatAuthorizedKey(pair.publicWire, comment) };
  return JSON.stringify(stored);
}

/** The CA's public key as an authorized_keys line. */
export async function sshCaPublicKey(backend: Backend, type: CaType): Promise<string> {
  const stored = await getJson<StoredCa>(backend, caKey(type));
  if (!stored) throw new Error(`the ${type} CA does not exist yet`);
  return stored.publicKey;
}

const signers = new WeakMap<Backend, Map<CaType, { privateKey: string; pair: SshKeyPair }>>();

async function caSigner(backend: Backend, type: CaType): Promise<SshKeyPair> {
  const stored = await getJson<StoredCa>(backend, caKey(type));
  if (!stored) throw new Error(`the ${type} CA does not exist yet`);
  let cache = signers.get(backend);
  if (!cache) signers.set(backend, (cache = new Map()));
  const hit = cache.get(type);
  if (hit && hit.privateKey === stored.privateKey) return hit.pair;
  const pair = parsePrivateKeyOpenSSH(stored.privateKey);
  cache.set(type, { privateKey: stored.privateKey, pair });
  return pair;
}

/** Takes the next certificate serial; serials are unique across the cluster. */
export async function nextSerial(backend: Backend): Promise<bigint> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const item = await backend.get('cas/serial');
    const next = (item ? BigInt(item.value) : 0n) + 1n;
    try {
      if (item) await backend.compareAndSwap('cas/serial', item.revision, next.toString());
      else await backend.create('cas/serial', next.toString());
      return next;
    } catch (err) {
      if (!(err instanceof ConflictError || err instanceof AlreadyExistsError)) throw err;
    }
  }
  throw new ConflictError('could not allocate a certificate serial: too much contention');
}

/** What to put in a certificate; validity comes from the TTL. */
export interface SshCertRequest {
  subjectPublicKey: Buffer;
  keyId: string;
  principals: string[];
  ttlMs: number;
  now: Date;
  extensions?: Record<string, string>;
  criticalOptions?: Record<string, string>;
}

/** Signs a certificate with the CA of the given type. */
export async function signWithCa(backend: Backend, type: CaType, req: SshCertRequest): Promise<SshCertificate> {
  const ca = await caSigner(backend, type);
  return signCertificate(ca, {
    type,
    subjectPublicKey: req.subjectPublicKey,
    keyId: req.keyId,
    principals: req.principals,
    ttlMs: req.ttlMs,
    now: req.now,
    serial: await nextSerial(backend),
    extensions: req.extensions,
    criticalOptions: req.criticalOptions,
  });
}

/**
 * The extensions a user certificate carries: ssh-keygen's defaults (DEFAULT_USER_EXTENSIONS)
 * without permit-X11-forwarding, so nodes refuse X11 to Postern users, as the recording proxy does.
 */
export const USER_CERT_EXTENSIONS: Record<string, string> = {
  'permit-agent-forwarding': '',
  'permit-port-forwarding': '',
  'permit-pty': '',
  'permit-user-rc': '',
};

/** TLS key pairs (ECDSA P-256) made where the identity lives; only the public half travels. */
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from './fs.ts';

/** Makes a fresh P-256 key pair, PEM encoded (PKCS#8 private, SPKI public). */
export function newTlsKeyPair(): { keyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
}

/** Loads the TLS key at `path`, making it (0600) on first use; returns it with its public half. */
export function loadOrCreateTlsKey(path: string): { keyPem: string; publicKeyPem: string } {
  if (existsSync(path)) {
    const keyPem = readFileSync(path, 'utf8');
    return { keyPem, publicKeyPem: createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }) as string };
  }
  const pair = newTlsKeyPair();
  writeFileAtomic(path, pair.keyPem, 0o600);
  return pair;
}

/** TLS key pairs (ECDSA P-256) made where the identity lives; only the public half travels. */
import { generateKeyPairSync } from 'node:crypto';

/** Makes a fresh P-256 key pair, PEM encoded (PKCS#8 private, SPKI public). */
export function newTlsKeyPair(): { keyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
}

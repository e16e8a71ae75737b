/**
 * What tests give the auth role and take from it: a low scrypt cost (hashing at production
 * cost is most of a signup's time), and certificates signed by the cluster's real user CA at
 * a time the test picks, so a certificate can be really expired without waiting for it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { MIN_SCRYPT_LOG2N, TEST_SCRYPT_LOG2N_ENV } from '../../src/auth/passwords.ts';
import { formatCertificate, parseCertificate, signCertificate } from '../../src/ssh/certs.ts';
import type { SshCertificate } from '../../src/ssh/certs.ts';
import { parsePrivateKeyOpenSSH } from '../../src/ssh/keys.ts';
import type { SshKeyPair } from '../../src/ssh/keys.ts';

/** log2 of scrypt's N in tests: the floor passwords.ts allows (production keeps its default). */
export const TEST_SCRYPT_LOG2N = MIN_SCRYPT_LOG2N;

/** The environment a `postern serve` under test gets: new password hashes at the test cost. */
export const TEST_SERVE_ENV: Record<string, string> = { [TEST_SCRYPT_LOG2N_ENV]: String(TEST_SCRYPT_LOG2N) };

/** The cluster's user CA key, read from a SQLite data dir the way its admin could. */
export function userCaOf(dataDir: string): SshKeyPair {
  const db = new DatabaseSync(join(dataDir, 'postern.db'), { readOnly: true });
  try {
    const row = db.prepare("SELECT value FROM items WHERE key = 'cas/ssh/user'").get() as { value: string } | undefined;
    if (!row) throw new Error(`no user CA in ${dataDir}`);
    return parsePrivateKeyOpenSSH((JSON.parse(row.value) as { privateKey: string }).privateKey);
  } finally {
    db.close();
  }
}

/**
 * Replaces the certificate in `certPath` with one the cluster's user CA signs for the same
 * key, id, principals and extensions, but whose validity ended `endedMsAgo` ago: a real
 * certificate, really expired, which the client, the proxy and sshd all refuse.
 */
export function expireCertificateFile(dataDir: string, certPath: string, endedMsAgo = 3_600_000): SshCertificate {
  const current = parseCertificate(readFileSync(certPath, 'utf8').trim());
  const ttlMs = 600_000;
  const expired = signCertificate(userCaOf(dataDir), {
    type: current.type,
    subjectPublicKey: current.subjectPublicKey,
    keyId: current.keyId,
    principals: current.principals,
    ttlMs,
    now: new Date(Date.now() - endedMsAgo - ttlMs),
    serial: current.serial,
    extensions: current.extensions,
    criticalOptions: current.criticalOptions,
  });
  writeFileSync(certPath, formatCertificate(expired) + '\n');
  return expired;
}

/**
 * The cluster's TLS certificate authority (ECDSA P-256, which every browser accepts).
 * It issues the Auth API's server certificate, client certificates that carry an
 * identity (admin or proxy) to the Auth API, and the proxies' web certificates.
 * Clients pin this CA: its pin is what `postern serve` prints.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto, createPublicKey, createPrivateKey, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

/** A stored TLS CA: its certificate and private key, both PEM. */
export interface TlsCaMaterial {
  certPem: string;
  keyPem: string;
}

/** The roles an Auth API client certificate can carry (in the certificate's O field). */
export type TlsIdentityRole = 'admin' | 'proxy' | 'auth';

/** What to put in an issued certificate. */
export interface TlsIssueRequest {
  /** The public key of the subject, SPKI PEM. */
  publicKeyPem: string;
  commonName: string;
  role: TlsIdentityRole;
  /** DNS names and IP addresses for a server certificate. */
  hosts?: string[];
  usage: 'server' | 'client' | 'both';
  ttlMs: number;
  now: Date;
}

/** Creates a new CA valid for ten years. */
export async function createTlsCa(clusterName: string, now: Date): Promise<TlsCaMaterial> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
    name: `CN=${escapeDn(clusterName)} TLS CA, O=postern`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + 3650 * DAY),
    signingAlgorithm: SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string;
  return { certPem: cert.toString('pem'), keyPem };
}

/** Issues a leaf certificate signed by the CA. */
export async function issueTlsCertificate(ca: TlsCaMaterial, req: TlsIssueRequest): Promise<string> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKeyDer = createPrivateKey(ca.keyPem).export({ type: 'pkcs8', format: 'der' });
  const signingKey = await webcrypto.subtle.importKey('pkcs8', caKeyDer, EC, false, ['sign']);
  const spki = createPublicKey(req.publicKeyPem).export({ type: 'spki', format: 'der' });
  const publicKey = await webcrypto.subtle.importKey('spki', spki, EC, true, ['verify']);
  const eku: string[] = [];
  if (req.usage !== 'client') eku.push(x509.ExtendedKeyUsage.serverAuth);
  if (req.usage !== 'server') eku.push(x509.ExtendedKeyUsage.clientAuth);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(eku),
    await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
  ];
  const hosts = req.hosts ?? [];
  if (hosts.length > 0) {
    extensions.push(new x509.SubjectAlternativeNameExtension(hosts.map((h) => (isIP(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h }))));
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
    subject: `CN=${escapeDn(req.commonName)}, O=${req.role}`,
    issuer: caCert.subject,
    notBefore: new Date(req.now.getTime() - 60_000),
    notAfter: new Date(req.now.getTime() + req.ttlMs),
    signingAlgorithm: SIGN,
    publicKey: publicKey as unknown as CryptoKey,
    signingKey: signingKey as unknown as CryptoKey,
    extensions,
  });
  return cert.toString('pem');
}

/** Makes a fresh P-256 key pair for a TLS identity, PEM encoded. */
export { newTlsKeyPair } from '../core/tls-keys.ts';

function escapeDn(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1');
}

/**
 * Web API authentication by user certificate: the CLI signs each request with the SSH key
 * `login` stored (src/client/request-signing.ts has the client's half and the format):
 *
 *   Authorization: Postern-Cert cert=<base64 certificate blob>,ts=<unix ms>,nonce=<hex>,sig=<base64 SSH signature>
 *
 * over "postern-webapi-v1\n" + method + "\n" + path+query + "\n" + ts + "\n" + nonce.
 * The proxy accepts it when the certificate is a user certificate of the cluster's user CA
 * (keys from auth, cached at most 5 s like every cluster fact, so a change reaches every proxy) within its validity, the signature verifies with the
 * key the certificate names, ts is within ±5 minutes, and the nonce was never used before
 * anywhere in the cluster: auth stores each nonce until the window ends (auth/nonces.ts),
 * so a replay on another proxy or after a restart is refused, and auth limits signed
 * requests per user and per source address (429 with Retry-After; one user's flood never
 * refuses another's requests). Every other refusal is a 401 whose message says which
 * check failed.
 *
 * SSH logins with a user certificate (the proxy's SSH listener and the recording proxy's
 * inner server) are checked here too, by {@link checkSshCertLogin}: the same CA and
 * validity checks, then proof of the certified key through ssh2's signature.
 */
import type { PublicKeyAuthContext } from 'ssh2';
import type { SignedRequestAuth } from '../api/proxy-auth.ts';
import type { Clock } from '../core/clock.ts';
import { systemClock } from '../core/clock.ts';
import { CertificateError, CertificateExpiredError, PosternError, ValidationError } from '../core/errors.ts';
import { verifySsh } from '../ssh/keys.ts';
import { parseCertificate, verifyCertificate } from '../ssh/certs.ts';
import type { SshCertificate } from '../ssh/certs.ts';
import { isCertAlgo, verifyCertAuthSignature } from '../ssh/ssh2-certs.ts';
import type { SignedPublicKeyAuth } from '../ssh/ssh2-certs.ts';
import { CLUSTER_INFO_MAX_AGE_MS, ClusterInfoSource } from './cluster-info.ts';
import { parseSelector } from '../api/labels.ts';
import { checkCriticalOptions } from '../ssh/cert-options.ts';

/** How far a request's timestamp may be from the proxy's clock. */
export const MAX_SKEW_MS = 5 * 60_000;

const SCHEME = 'Postern-Cert';
const CONTEXT = 'postern-webapi-v1';

/** A refused request signature: 401, exit 4, hint to log in again. */
export class RequestAuthError extends PosternError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('ERR_POSTERN_REQUEST_AUTH', message, { status: 401, exitCode: 4, hint: 'Log in again with:  postern login', ...options });
  }
}

/** What the authenticator needs. */
export interface CertAuthOptions {
  auth: SignedRequestAuth;
  /** The proxy's shared cluster facts; one of its own, from `auth`, when not given. */
  cluster?: ClusterInfoSource;
  clock?: Clock;
}

/** Who a signed request came from. */
export interface CertCaller {
  /** The Postern user (the certificate's key id). */
  user: string;
  principals: string[];
  certificate: SshCertificate;
}

interface ParsedHeader {
  cert: Buffer;
  ts: number;
  nonce: string;
  sig: Buffer;
}

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Splits an Authorization header of the Postern-Cert scheme; throws RequestAuthError. */
export function parseCertAuthHeader(header: string | undefined): ParsedHeader {
  if (!header) throw new RequestAuthError('this request needs a signature: Authorization: Postern-Cert …');
  const sp = header.indexOf(' ');
  if (sp < 0 || header.slice(0, sp) !== SCHEME) throw new RequestAuthError(`unsupported authorization scheme: use ${SCHEME}`);
  const fields = new Map<string, string>();
  for (const part of header.slice(sp + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new RequestAuthError('malformed Postern-Cert authorization');
    const k = part.slice(0, eq).trim();
    if (fields.has(k)) throw new RequestAuthError(`"${k}" appears twice in the authorization`);
    fields.set(k, part.slice(eq + 1).trim());
  }
  const cert = fields.get('cert') ?? '';
  const ts = fields.get('ts') ?? '';
  const nonce = fields.get('nonce') ?? '';
  const sig = fields.get('sig') ?? '';
  if (!B64.test(cert) || cert.length > 16384) throw new RequestAuthError('malformed certificate in the authorization');
  if (!/^\d{1,15}$/.test(ts)) throw new RequestAuthError('malformed timestamp in the authorization');
  if (!/^[0-9a-f]{16,128}$/.test(nonce)) throw new RequestAuthError('malformed nonce in the authorization (16 to 128 lower-case hex digits)');
  if (!B64.test(sig) || sig.length > 4096) throw new RequestAuthError('malformed signature in the authorization');
  return { cert: Buffer.from(cert, 'base64'), ts: Number(ts), nonce, sig: Buffer.from(sig, 'base64') };
}

/** Checks signed web API requests. One per web server: it holds the CA cache; auth holds the nonces. */
export class CertAuthenticator {
  private readonly opts: CertAuthOptions;
  private readonly clock: Clock;
  private readonly cluster: ClusterInfoSource;

  constructor(opts: CertAuthOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.cluster = opts.cluster ?? new ClusterInfoSource(opts.auth, { clock: this.clock });
  }

  private async userCaWires(): Promise<Buffer[]> {
    return (await this.cluster.get(CLUSTER_INFO_MAX_AGE_MS)).userCaKeys;
  }

  /**
   * Verifies a request's Authorization header; resolves with the caller or throws
   * RequestAuthError (401), or RateLimitedError (429) past the cluster's limits for the
   * user or for `clientAddr`. `clientAddr` is where the request came from: a certificate's
   * source-address is checked against it, and refused when it is not given.
   */
  async authenticate(method: string, pathAndQuery: string, header: string | undefined, clientAddr?: string): Promise<CertCaller> {
    const h = parseCertAuthHeader(header);
    const nowDate = this.clock.now();
    const now = nowDate.getTime();
    if (Math.abs(now - h.ts) > MAX_SKEW_MS) {
      throw new RequestAuthError(`the request's timestamp is more than ${MAX_SKEW_MS / 60_000} minutes from the proxy's clock`);
    }
    let cert: SshCertificate;
    try {
      cert = parseCertificate(h.cert);
    } catch (err) {
      throw new RequestAuthError(`the certificate in the authorization cannot be read: ${(err as Error).message}`, { cause: err });
    }
    try {
      verifyCertificate(cert, { caPublicKeys: await this.userCaWires(), type: 'user', now: nowDate });
    } catch (err) {
      if (err instanceof CertificateError && err.code === 'ERR_POSTERN_CERT_EXPIRED') {
        throw new CertificateExpiredError(`the certificate ${err.message.replace(/^certificate /, '')}`, { cause: err });
      }
      throw new RequestAuthError(`the certificate was refused: ${(err as Error).message}`, { cause: err });
    }
    try {
      checkCriticalOptions(cert, clientAddr);
    } catch (err) {
      throw new RequestAuthError(`the certificate was refused: ${(err as Error).message}`, { cause: err });
    }
    const text = Buffer.from(`${CONTEXT}\n${method.toUpperCase()}\n${pathAndQuery}\n${h.ts}\n${h.nonce}`, 'utf8');
    let ok = false;
    try { ok = verifySsh(cert.subjectPublicKey, text, h.sig); } catch { ok = false; }
    if (!ok) throw new RequestAuthError('the request signature does not verify with the certificate\'s key');
    await this.cluster.checkAccount(cert);
    // Only signed requests get here, so strangers can neither fill the store nor drain a user's limit.
    await this.opts.auth.claimNonce({ user: cert.keyId, nonce: h.nonce, clientAddr: clientAddr ?? '', expiresAt: h.ts + MAX_SKEW_MS });
    return { user: cert.keyId, principals: cert.principals, certificate: cert };
  }
}

/** What an SSH certificate login is checked against. */
export interface SshCertLoginCheck {
  /** The cluster's user CA keys, wire blobs. */
  userCaKeys: Buffer[];
  now: Date;
  /** The Postern user the certificate must belong to (inside a connection that already has one). */
  user?: string;
  /** Where the connection comes from: checked against a certificate's source-address (refused when not given). */
  clientAddr?: string;
  /** Throws when the login asked for is not allowed with this certificate. */
  checkLogin(cert: SshCertificate, login: string): void;
}

/**
 * Checks an ssh2 publickey login: only a user certificate of the cluster's CA, valid now,
 * whose critical options allow it (source-address, no unknown option: cert-options.ts),
 * of `check.user` when given, for a login `check.checkLogin` allows, whose holder signed.
 * Returns the certificate once signed; undefined for ssh2's query without a signature
 * (accept it: the client then signs). Throws a PosternError naming the failed check;
 * `ERR_POSTERN_CERT_REQUIRED` for a plain key.
 */
export function checkSshCertLogin(ctx: PublicKeyAuthContext, check: SshCertLoginCheck): SshCertificate | undefined {
  if (!isCertAlgo(ctx.key.algo)) throw new PosternError('ERR_POSTERN_CERT_REQUIRED', 'only certificates of this cluster are accepted');
  const cert = parseCertificate(ctx.key.data);
  verifyCertificate(cert, { caPublicKeys: check.userCaKeys, type: 'user', now: check.now });
  checkCriticalOptions(cert, check.clientAddr);
  if (check.user !== undefined && cert.keyId !== check.user) {
    throw new PosternError('ERR_POSTERN_CERT_USER', `the certificate of "${cert.keyId}" inside a connection of "${check.user}"`);
  }
  check.checkLogin(cert, ctx.username);
  if (!ctx.signature) return undefined;
  if (!verifyCertAuthSignature(ctx as unknown as SignedPublicKeyAuth)) throw new PosternError('ERR_POSTERN_BAD_SIGNATURE', 'bad signature');
  return cert;
}

/** The query of GET /webapi/nodes: `labels=k=v,k2=v2` and `search=TEXT`, checked. */
export function parseNodesQuery(query: unknown): { labels?: Record<string, string>; search?: string } {
  const q = (query ?? {}) as Record<string, unknown>;
  const out: { labels?: Record<string, string>; search?: string } = {};
  if (q.labels !== undefined && q.labels !== '') {
    if (typeof q.labels !== 'string') throw new ValidationError('labels must be given once, as k=v,k2=v2');
    out.labels = parseSelector(q.labels);
  }
  if (q.search !== undefined && q.search !== '') {
    if (typeof q.search !== 'string' || q.search.length > 256) throw new ValidationError('search must be given once, at most 256 characters');
    out.search = q.search;
  }
  return out;
}

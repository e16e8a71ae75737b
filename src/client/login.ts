/**
 * The login flow on the engineer's machine: a fresh ed25519 key pair (only the public half
 * leaves; a login again after expiry may keep the stored one), credentials to the proxy, the certificate back into the key store, the profile,
 * and the key with its certificate into the running ssh-agent for the certificate's life.
 */
import { generateKeyPair, parsePrivateKeyOpenSSH } from '../ssh/keys.ts';
import type { SshKeyPair } from '../ssh/keys.ts';
import { formatAuthorizedKey } from '../ssh/keys.ts';
import { parseCertificate } from '../ssh/certs.ts';
import { AgentClient } from '../ssh/agent.ts';
import { existsSync, readFileSync } from 'node:fs';
import { PosternError } from '../core/errors.ts';
import type { Clock } from '../core/clock.ts';
import type { WebClient } from './web-client.ts';
import { profilePaths } from './paths.ts';
import type { ProfilePaths } from './paths.ts';
import { saveProfile } from './profile.ts';
import type { Profile } from './profile.ts';
import { storeKeys } from './keystore.ts';

/** What a login needs once the user has been asked for everything. */
export interface LoginRequest {
  home: string;
  web: WebClient;
  proxyHost: string;
  webProxyAddr: string;
  user: string;
  password: string;
  otp?: string;
  ttlMs?: number;
  caPin?: string;
  insecure?: boolean;
  addToAgent: 'auto' | 'yes' | 'no';
  agentSocket?: string;
  clock: Clock;
  /**
   * The key pair to certify instead of a fresh one: a login again while `ssh` waits on its
   * ProxyCommand keeps the key ssh already holds, so only the certificate changes.
   */
  keyPair?: SshKeyPair;
}

/** What a login did. */
export interface LoginResult {
  profile: Profile;
  paths: ProfilePaths;
  validBefore: Date;
  ttlCapped: boolean;
  agent: 'added' | 'skipped' | { error: string };
}

/** Logs in and stores everything. */
export async function login(req: LoginRequest): Promise<LoginResult> {
  const pair = req.keyPair ?? generateKeyPair();
  const res = await req.web.loginSsh({
    user: req.user,
    password: req.password,
    ...(req.otp ? { otp: req.otp } : {}),
    publicKey: formatAuthorizedKey(pair.publicWire),
    ...(req.ttlMs ? { ttlMs: req.ttlMs } : {}),
  });
  const cert = parseCertificate(res.certificate);
  if (!cert.subjectPublicKey.equals(pair.publicWire)) {
    throw new PosternError('ERR_POSTERN_BAD_RESPONSE', 'the proxy returned a certificate for another key', { exitCode: 1 });
  }
  const paths = profilePaths(req.home, req.proxyHost, res.user, res.clusterName);
  // What an earlier login left in the agent: the key and its certificate (two identities).
  const oldIdentities = previousIdentities(paths);
  storeKeys(paths, {
    keyPair: pair,
    comment: `${res.user}@${res.clusterName}`,
    certificate: res.certificate,
    hostCaKeys: res.hostCaKeys,
    cluster: res.clusterName,
    proxySshAddr: res.proxySshAddr,
    proxySshHostKey: res.proxySshHostKey,
  });
  const profile: Profile = {
    webProxyAddr: req.webProxyAddr,
    sshProxyAddr: res.proxySshAddr,
    proxyHost: req.proxyHost,
    cluster: res.clusterName,
    user: res.user,
    logins: res.logins,
    ...(req.caPin ? { caPin: req.caPin } : {}),
    ...(req.insecure ? { insecure: true } : {}),
  };
  saveProfile(req.home, profile);

  let agent: LoginResult['agent'] = 'skipped';
  if (req.addToAgent !== 'no' && req.agentSocket) {
    try {
      const a = await AgentClient.connect(req.agentSocket);
      try {
        for (const wire of oldIdentities) await a.remove(wire).catch(() => {});
        const lifetime = Math.max(1, Math.floor((cert.validBefore.getTime() - req.clock.now().getTime()) / 1000));
        // As ssh-add does: the plain key, then its certificate, both for the certificate's
        // lifetime (gpg-agent garbles a certificate whose key it does not hold yet).
        const comment = `${res.user}@${res.clusterName}`;
        await a.addIdentity(pair, { comment, lifetimeSeconds: lifetime });
        await a.addIdentity(pair, { certificate: cert, comment, lifetimeSeconds: lifetime });
        agent = 'added';
      } finally {
        a.close();
      }
    } catch (err) {
      if (req.addToAgent === 'yes') throw err;
      agent = { error: (err as Error).message };
    }
  } else if (req.addToAgent === 'yes') {
    throw new PosternError('ERR_POSTERN_NO_AGENT', 'no ssh-agent is running (SSH_AUTH_SOCK is not set)', {
      hint: 'Start one with:  eval "$(ssh-agent)"  or pass --add-keys-to-agent no',
    });
  }
  return { profile, paths, validBefore: cert.validBefore, ttlCapped: Boolean(res.ttlCapped), agent };
}

/** The agent identities of the login stored at `paths`, if any: its certificate and its plain key. */
function previousIdentities(paths: ProfilePaths): Buffer[] {
  const out: Buffer[] = [];
  try {
    if (existsSync(paths.certificate)) out.push(parseCertificate(readFileSync(paths.certificate, 'utf8').trim()).raw);
  } catch { /* unreadable: nothing to remove */ }
  try {
    if (existsSync(paths.privateKey)) out.push(parsePrivateKeyOpenSSH(readFileSync(paths.privateKey, 'utf8')).publicWire);
  } catch { /* unreadable: nothing to remove */ }
  return out;
}

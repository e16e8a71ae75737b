/**
 * The certificate corpus, with OpenSSH's sshd as
 * the oracle: certificates made by `ssh-keygen -s` with the cluster's user CA (validity
 * windows, principals, critical options, extensions, another CA, a host certificate, other
 * key types, tampered bytes, a plain key), each tried on every surface of the proxy that
 * takes a certificate, and on a real sshd that trusts the same CA (TrustedUserCAKeys):
 *
 *   proxy login   `ssh LOGIN@proxy`          must accept exactly when `ssh LOGIN@sshd` does
 *   ssh -J        `ssh -J LOGIN@proxy web1`  must get through exactly when `ssh -J` through sshd does
 *   TLS tunnel    the tunnel's signed CONNECT, as `ssh -J` (it forwards a port for LOGIN)
 *   signed API    GET /webapi/nodes, signed  as the login (it names no login, so principals do not matter)
 *   pty           `ssh -tt`                  a pty is refused exactly when sshd refuses it
 *
 * Where Postern is stricter than sshd on purpose (a certificate must belong to a live
 * account: its key id and account extension), the case says so.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { TestCluster, userFiles } from '../helpers/cluster.ts';
import { runDetached } from '../helpers/cli.ts';
import { LOCAL_USER, startSshd } from '../helpers/openssh.ts';
import type { Sshd } from '../helpers/openssh.ts';
import { userCaOf } from '../helpers/auth.ts';
import { encodePrivateKeyOpenSSH, parseAuthorizedKey, parsePrivateKeyOpenSSH } from '../../src/ssh/keys.ts';
import { formatCertificate, parseCertificate, signCertificate } from '../../src/ssh/certs.ts';
import { signRequest } from '../../src/client/request-signing.ts';
import { TUNNEL_ALPN } from '../../src/proxy/tunnel.ts';
import WebSocket from 'ws';

const c = new TestCluster();
const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
let dir: string;
let caFile: string;
let account: string;
let oracle: Sshd;
const keys: Record<'ed25519' | 'ecdsa' | 'rsa' | 'other', string> = { ed25519: '', ecdsa: '', rsa: '', other: '' };

type Surface = 'login' | 'jump' | 'tunnel' | 'api' | 'pty';

/** One certificate of the corpus. */
interface Case {
  name: string;
  /** The private key ssh uses (its .pub is what is certified unless `make` says otherwise). */
  key: keyof typeof keys;
  /** Makes the certificate file for `key`, or '' for none (a plain key). */
  make: (key: string, out: string) => string;
  /** Postern's answer where it differs from sshd on purpose (why in `stricter`). */
  posternRefuses?: boolean;
  stricter?: string;
}

function utc(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
}

/** `ssh-keygen -s` with the cluster's user CA (or `ca`), key id alice and her account, plus `args`. */
function keygen(args: string[], opts: { ca?: string; id?: string; account?: boolean } = {}) {
  return (key: string, out: string): string => {
    copyFileSync(`${key}.pub`, `${out}.pub`);
    const ext = opts.account === false ? [] : ['-O', `extension:postern-account@postern.dev=${account}`];
    execFileSync('ssh-keygen', ['-q', '-s', opts.ca ?? caFile, '-I', opts.id ?? 'alice', ...ext, ...args, `${out}.pub`]);
    return `${out}-cert.pub`;
  };
}

/** A certificate Postern's own signer makes (for what ssh-keygen refuses to write). */
function postern(criticalOptions: Record<string, string>) {
  return (key: string, out: string): string => {
    const wire = parseAuthorizedKey(readFileSync(`${key}.pub`, 'utf8')).wire;
    const cert = signCertificate(userCaOf(c.serve.dataDir), {
      type: 'user', subjectPublicKey: wire, keyId: 'alice', principals: [LOCAL_USER], ttlMs: 600_000, serial: 7n, criticalOptions,
      extensions: { 'permit-port-forwarding': '', 'permit-pty': '', 'postern-account@postern.dev': account },
    });
    writeFileSync(`${out}-cert.pub`, formatCertificate(cert) + '\n');
    return `${out}-cert.pub`;
  };
}

/** A certificate from `make` with the byte at `at` (from the blob's end) XORed with `xor`. */
function tampered(make: Case['make'], fromEnd: (raw: Buffer) => number, xor = 0x01) {
  return (key: string, out: string): string => {
    const path = make(key, out);
    const [type, b64] = readFileSync(path, 'utf8').trim().split(' ');
    const raw = Buffer.from(b64, 'base64');
    raw[raw.length - fromEnd(raw)] ^= xor;
    writeFileSync(path, `${type} ${raw.toString('base64')}\n`);
    return path;
  };
}

const now = Date.now();
const CASES: Case[] = [
  { name: 'valid, ten minutes', key: 'ed25519', make: keygen(['-n', LOCAL_USER, '-V', '-1m:+10m']) },
  { name: 'always valid (no -V)', key: 'ed25519', make: keygen(['-n', LOCAL_USER]) },
  { name: 'expired a second ago', key: 'ed25519', make: keygen(['-n', LOCAL_USER, '-V', `${utc(now - 3_600_000)}:${utc(Date.now() - 1000)}`]) },
  { name: 'not yet valid (from in an hour)', key: 'ed25519', make: keygen(['-n', LOCAL_USER, '-V', `${utc(now + 3_600_000)}:${utc(now + 7_200_000)}`]) },
  { name: 'another CA', key: 'ed25519', make: (k, o) => keygen(['-n', LOCAL_USER], { ca: join(dir, 'foreign_ca') })(k, o) },
  { name: 'host certificate as user certificate', key: 'ed25519', make: keygen(['-h', '-n', LOCAL_USER]) },
  { name: 'principal of someone else', key: 'ed25519', make: keygen(['-n', 'nobody-else']) },
  { name: 'several principals, the login among them', key: 'ed25519', make: keygen(['-n', `ops,${LOCAL_USER},deploy`]) },
  { name: 'wildcard principal', key: 'ed25519', make: keygen(['-n', '*']) },
  { name: 'no principals', key: 'ed25519', make: keygen([]) },
  { name: 'source-address matching (127.0.0.1/32)', key: 'ed25519', make: keygen(['-n', LOCAL_USER, '-O', 'source-address=127.0.0.1/32']) },
  { name: 'source-address matching (list, 127.0.0.0/8)', key: 'ed25519', make: keygen(['-n', LOCAL_USER, '-O', 'source-address=10.1.0.0/16,127.0.0.0/8,::1']) },
  { name: 'source-address elsewhere (10.0.0.0/8)', key: 'ed25519', make: keygen(['-n', LOCAL_USER, '-O', 'source-address=10.0.0.0/8,192.0.2.7']) },
  { name: 'source-address unreadable (host bits past the prefix)', key: 'ed25519', make: postern({ 'source-address': '127.0.0.1/24' }) },
  { name: 'source-address unreadable (a name)', key: 'ed25519', make: postern({ 'source-address': 'localhost' }) },
  { name: 'unknown critical option', key: 'ed25519', make: keygen(['-n', LOCAL_USER, '-O', 'critical:made-up@example.com=yes']) },
  { name: 'unknown extension (ignored)', key: 'ed25519', make: keygen(['-n', LOCAL_USER, '-O', 'extension:made-up@example.com=yes']) },
  { name: 'force-command', key: 'ed25519', make: keygen(['-n', LOCAL_USER, '-O', 'force-command=/bin/true']) },
  { name: 'verify-required (not a FIDO key)', key: 'ed25519', make: keygen(['-n', LOCAL_USER, '-O', 'verify-required']) },
  { name: 'no port forwarding', key: 'ed25519', make: keygen(['-n', LOCAL_USER, '-O', 'no-port-forwarding']) },
  { name: 'no pty', key: 'ed25519', make: keygen(['-n', LOCAL_USER, '-O', 'no-pty']) },
  { name: 'no extensions at all (-O clear)', key: 'ed25519', make: keygen(['-n', LOCAL_USER, '-O', 'clear']) },
  { name: 'ecdsa key', key: 'ecdsa', make: keygen(['-n', LOCAL_USER]) },
  { name: 'rsa key', key: 'rsa', make: keygen(['-n', LOCAL_USER]) },
  { name: 'certificate of another key than the one signing', key: 'ed25519', make: (_k, o) => keygen(['-n', LOCAL_USER])(keys.other, o) },
  { name: 'tampered signature', key: 'ed25519', make: tampered(keygen(['-n', LOCAL_USER]), () => 3) },
  // Signed for "alicf", changed to "alice": only the CA signature can tell.
  { name: 'tampered body (key id)', key: 'ed25519', make: tampered(keygen(['-n', LOCAL_USER], { id: 'alicf' }), (raw) => raw.length - raw.indexOf('alicf') - 4, 0x03) },
  { name: 'plain key, no certificate', key: 'ed25519', make: () => '' },
  {
    name: 'key id of no Postern account', key: 'ed25519', make: keygen(['-n', LOCAL_USER], { id: 'mallory' }),
    posternRefuses: true, stricter: 'a certificate must belong to a live Postern account',
  },
  {
    name: 'no account extension', key: 'ed25519', make: keygen(['-n', LOCAL_USER], { account: false }),
    posternRefuses: true, stricter: 'a certificate must name the account generation it was issued to',
  },
];

/** An ssh_config for one case: its key (and certificate), no agent, hosts not checked (not what is tested here). */
function sshConfig(name: string, key: string, cert: string): string {
  const path = join(dir, `${name}.ssh_config`);
  writeFileSync(path, [
    'Host *', `  User ${LOCAL_USER}`, `  IdentityFile ${key}`, ...(cert ? [`  CertificateFile ${cert}`] : []), '  IdentitiesOnly yes',
    '  IdentityAgent none', '  BatchMode yes', '  ConnectTimeout 30', '  StrictHostKeyChecking no', '  UserKnownHostsFile /dev/null',
    '  LogLevel ERROR', '',
  ].join('\n'));
  return path;
}

const ssh = (args: string[]) => runDetached('ssh', args, { ...process.env, SSH_AUTH_SOCK: '' });

/** The proxy's surfaces and the oracle's, for one certificate. */
async function trySurfaces(cfg: string, key: string, cert: string): Promise<{ proxy: Record<Surface, boolean | undefined>; sshd: Record<Surface, boolean | undefined> }> {
  const proxyPort = String(c.sshPort);
  const nodePort = String(oracle.port);
  const sshdLogin = await ssh(['-F', cfg, '-p', nodePort, '127.0.0.1', 'true']);
  // (ssh refuses a jump host that is the destination by name: "localhost" for the last hop.)
  const sshdJump = await ssh(['-F', cfg, '-J', `127.0.0.1:${nodePort}`, '-p', nodePort, 'localhost', 'true']);
  const proxyLogin = await ssh(['-F', cfg, '-p', proxyPort, '127.0.0.1', 'true']);
  const proxyLoggedIn = /This is the Postern proxy|runs no commands/.test(proxyLogin.stderr);
  assert.ok(proxyLoggedIn || /Permission denied/.test(proxyLogin.stderr), `the proxy login neither got in nor was denied: ${proxyLogin.stderr}`);
  const proxyJump = await ssh(['-F', cfg, '-J', `127.0.0.1:${proxyPort}`, 'web1', 'true']);
  const ptyRefused = /PTY allocation request failed/;
  const sshdPty = sshdLogin.code === 0 ? !ptyRefused.test((await ssh(['-F', cfg, '-tt', '-p', nodePort, '127.0.0.1', 'true'])).stderr) : undefined;
  const proxyPty = proxyLoggedIn ? !ptyRefused.test((await ssh(['-F', cfg, '-tt', '-p', proxyPort, '127.0.0.1', 'true'])).stderr) : undefined;
  let api: boolean | undefined;
  let tunnel: boolean | undefined;
  if (cert && readFileSync(key, 'utf8').includes('OPENSSH PRIVATE KEY')) {
    let pair;
    try { pair = parsePrivateKeyOpenSSH(readFileSync(key, 'utf8')); } catch { pair = undefined; } // ed25519 only: the CLI's keys
    if (pair) {
      const raw = Buffer.from(readFileSync(cert, 'utf8').trim().split(' ')[1], 'base64');
      const res = await request(`https://${c.serve.web}/webapi/nodes`, {
        dispatcher, headers: { authorization: signRequest({ keyPair: pair, certificate: raw, method: 'GET', pathAndQuery: '/webapi/nodes' }) },
      });
      await res.body.dump();
      assert.ok(res.statusCode === 200 || res.statusCode === 401, `the signed API answered ${res.statusCode}`);
      api = res.statusCode === 200;
      const path = `/tunnel?target=web1&port=22&login=${LOCAL_USER}`;
      const first = await tunnelAnswer(JSON.stringify({ v: 1, path, authorization: signRequest({ keyPair: pair, certificate: raw, method: 'CONNECT', pathAndQuery: path }) }));
      tunnel = 'ok' in first;
    }
  }
  return {
    proxy: { login: proxyLoggedIn, jump: proxyJump.code === 0, tunnel, api, pty: proxyPty },
    sshd: { login: sshdLogin.code === 0, jump: sshdJump.code === 0, tunnel: sshdJump.code === 0, api: sshdLogin.code === 0, pty: sshdPty },
  };
}

/** Sends a tunnel request line; resolves with the proxy's first answer line, parsed. */
function tunnelAnswer(line: string): Promise<Record<string, unknown>> {
  const [host, port] = c.serve.web.split(':');
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host, port: Number(port), rejectUnauthorized: false, ALPNProtocols: [TUNNEL_ALPN] }, () => s.write(`${line}\n`));
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      const nl = got.indexOf('\n');
      if (nl >= 0) { s.destroy(); resolve(JSON.parse(got.slice(0, nl)) as Record<string, unknown>); }
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`the tunnel closed without an answer: ${got}`)));
  });
}

before(async () => {
  await c.start();
  const alice = await c.user('alice', LOCAL_USER, SECRET);
  await c.node('web1', 'env=prod');
  dir = join(c.work, 'corpus');
  mkdirSync(dir, { recursive: true });
  caFile = join(dir, 'user_ca');
  writeFileSync(caFile, encodePrivateKeyOpenSSH(userCaOf(c.serve.dataDir)), { mode: 0o600 });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'foreign_ca')]);
  account = parseCertificate(readFileSync(userFiles(alice, 'alice').cert, 'utf8').trim()).extensions['postern-account@postern.dev'];
  assert.ok(account);
  for (const [name, args] of [['ed25519', ['-t', 'ed25519']], ['ecdsa', ['-t', 'ecdsa']], ['rsa', ['-t', 'rsa', '-b', '3072']], ['other', ['-t', 'ed25519']]] as const) {
    keys[name] = join(dir, `key-${name}`);
    execFileSync('ssh-keygen', ['-q', ...args, '-N', '', '-f', keys[name]]);
  }
  oracle = await startSshd({ trustedUserCaKeys: execFileSync('ssh-keygen', ['-y', '-f', caFile]).toString() });
});

after(async () => {
  await oracle?.stop();
  await dispatcher.close();
  await c.stop();
});

test('every certificate of the corpus: the proxy accepts on every surface exactly when sshd does', async () => {
  const rows: string[] = [];
  const mismatches: string[] = [];
  for (const [i, k] of CASES.entries()) {
    const out = join(dir, `case-${i}`);
    const cert = k.make(keys[k.key], out);
    const cfg = sshConfig(`case-${i}`, keys[k.key], cert);
    const { proxy, sshd } = await trySurfaces(cfg, keys[k.key], cert);
    const cells: string[] = [];
    for (const s of ['login', 'jump', 'tunnel', 'api', 'pty'] as const) {
      if (proxy[s] === undefined && (s !== 'pty' || sshd.pty === undefined || k.posternRefuses)) { cells.push(`${s} -`); continue; }
      let want = sshd[s];
      // The signed API names no login: principals are not its business, the rest is.
      if (s === 'api' && /principal/.test(k.name)) want = true;
      if (k.posternRefuses) want = s === 'pty' ? undefined : false;
      cells.push(`${s} ${proxy[s] ? 'in' : 'out'}${proxy[s] === want ? '' : ` (sshd: ${want ? 'in' : 'out'})`}`);
      if (proxy[s] !== want) mismatches.push(`${k.name}: ${s} proxy ${String(proxy[s])}, expected ${String(want)}`);
    }
    rows.push(`# ${k.name.padEnd(55)} sshd login ${sshd.login ? 'in ' : 'out'} jump ${sshd.jump ? 'in ' : 'out'} | proxy ${cells.join(', ')}${k.stricter ? ` [Postern stricter: ${k.stricter}]` : ''}`);
  }
  console.log(rows.join('\n'));
  assert.deepEqual(mismatches, [], `the proxy and sshd disagree:\n${mismatches.join('\n')}\n${c.serve.stderr().slice(-3000)}`);
  // The corpus is not trivial: sshd itself let some in and kept some out.
  assert.ok(rows.some((r) => r.includes('sshd login in')) && rows.some((r) => r.includes('sshd login out')));
});

test('source-address lists are read as sshd reads them', async () => {
  const { sourceAddressAllows, parseSourceAddressList } = await import('../../src/ssh/cert-options.ts');
  assert.equal(sourceAddressAllows('127.0.0.1/32', '127.0.0.1'), true);
  assert.equal(sourceAddressAllows('10.0.0.0/8,127.0.0.0/8', '::ffff:127.0.0.9'), true, 'an IPv4-mapped client is its IPv4 address');
  assert.equal(sourceAddressAllows('10.0.0.0/8', '127.0.0.1'), false);
  assert.equal(sourceAddressAllows('::ffff:127.0.0.0/104', '127.0.0.1'), false, 'no IPv4 client matches an IPv6 entry');
  assert.equal(sourceAddressAllows('2001:db8::/32', '2001:db8:0:1::5'), true);
  assert.equal(sourceAddressAllows('192.0.2.7', '192.0.2.7'), true);
  for (const bad of ['', 'localhost', '127.0.0.1/24', '2001:db8::1/32', '1.2.3.4/33', '1.2.3.4,', '1.2.3.4/8/8', '*']) {
    assert.throws(() => parseSourceAddressList(bad), (err: Error & { code?: string }) => err.code === 'ERR_POSTERN_CERT_OPTION', JSON.stringify(bad));
  }
});

test('ssh -J NAME@proxy LOGIN@node: the jump login is not taken as the node login', async () => {
  // The user's own name is a login too (a role grants it on dev nodes, so the certificate lists
  // it), but on web1 a role grants only LOCAL_USER.
  for (const [name, login, labels] of [['webops', LOCAL_USER, 'env=prod'], ['devbox', 'jumper', 'env=dev']]) {
    const role = await c.admin(['roles', 'add', name, '--logins', login, '--node-labels', labels]);
    assert.equal(role.code, 0, role.stderr);
  }
  const home = await c.user('jumper', `jumper,${LOCAL_USER}`, 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ', 'webops,devbox');
  assert.deepEqual(parseCertificate(readFileSync(userFiles(home, 'jumper').cert, 'utf8').trim()).principals.sort(), ['jumper', LOCAL_USER].sort());
  const f = userFiles(home, 'jumper');
  const cfg = join(dir, 'jumper.ssh_config');
  writeFileSync(cfg, [
    'Host *', `  IdentityFile ${f.key}`, `  CertificateFile ${f.cert}`, '  IdentitiesOnly yes', '  IdentityAgent none', '  BatchMode yes',
    `  UserKnownHostsFile ${f.knownHosts}`, '  StrictHostKeyChecking yes', '  ConnectTimeout 30', '',
  ].join('\n'));
  const r = await ssh(['-F', cfg, '-J', `jumper@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web1`, 'echo', 'jumped']);
  assert.equal(r.code, 0, r.stderr + c.serve.stderr().slice(-1500));
  assert.equal(r.stdout, 'jumped\n');
  // The node still decides the login: one the certificate does not list is refused there.
  const other = await ssh(['-F', cfg, '-J', `jumper@127.0.0.1:${c.sshPort}`, 'nobody-here@web1', 'true']);
  assert.notEqual(other.code, 0);
});

test('the web terminal takes a web session cookie, never a certificate: a signed request with a valid one is refused', async () => {
  const f = userFiles(join(c.work, 'home-alice'), 'alice');
  const keyPair = parsePrivateKeyOpenSSH(readFileSync(f.key, 'utf8'));
  const certificate = Buffer.from(readFileSync(f.cert, 'utf8').trim().split(' ')[1], 'base64');
  const sign = (method: string, pathAndQuery: string): string => signRequest({ keyPair, certificate, method, pathAndQuery });
  // The same certificate calls the signed API without a cookie (the corpus's api surface)…
  const api = await request(`https://${c.serve.web}/webapi/nodes`, { dispatcher, headers: { authorization: sign('GET', '/webapi/nodes') } });
  await api.body.dump();
  assert.equal(api.statusCode, 200);
  // …but opens no web terminal: the upgrade is refused before any node is dialled.
  const path = `/webapi/terminal?node=web1&login=${LOCAL_USER}&cols=80&rows=24`;
  const status = await new Promise<number | string>((resolve) => {
    const ws = new WebSocket(`wss://${c.serve.web}${path}`, { headers: { origin: `https://${c.serve.web}`, authorization: sign('GET', path) }, rejectUnauthorized: false });
    ws.on('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.on('open', () => { resolve('open'); ws.close(); });
    ws.on('error', (err) => resolve(err.message));
  });
  assert.equal(status, 401);
});

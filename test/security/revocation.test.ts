/**
 * Revocation that bites, against a real cluster: after `users reset` the
 * certificate a user already holds is refused within seconds by every surface that takes
 * one — the SSH listener through OpenSSH's ProxyCommand (`postern proxy ssh`) and through
 * `ssh -J`, the signed web API (`postern ls`) and the TLS tunnel — and their web cookie no
 * longer opens anything, the web terminal included. After `users rm` alone the certificate
 * is refused too; after `users rm` and `users add` of the same name, the old certificate
 * stays refused, also once the new account has signed up and logged in. A user locked out
 * by failed logins cannot log in again, while the certificate they hold keeps working until
 * it expires (as docs/security.md says). `postern lock` is covered by
 * test/integration/lock.test.ts (every surface, the web terminal, a second proxy).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { TestCluster, TEST_PASSWORD, userFiles, proxySshConfig } from '../helpers/cluster.ts';
import { runPostern, runDetached } from '../helpers/cli.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { parseCertificate } from '../../src/ssh/certs.ts';

const c = new TestCluster();
const ALICE_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const BOB_SECRET = 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ';
const CAROL_SECRET = 'MFRGGZDFMZTWQ2LKNNWG23TPOA';
const DAVE_SECRET = 'ONSWG4TFOQYTEMZUGU3DOOBZGAYTEMZU';
const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
/** A reset must bite within this at every surface (the proxy keeps an answer 2 s). */
const BITE_DEADLINE_MS = 15_000;
let alice: string;
let dave: string;
const bob = join(c.work, 'home-bob-first');

function userEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}`, TSH_HOME: home, POSTERN_FROM_SOURCE: '1', NO_COLOR: '1' };
  delete env.SSH_AUTH_SOCK;
  return env;
}

/** The ways in of a user's certificate; each resolves true when it got through. */
function surfaces(home: string, user: string): Record<string, () => Promise<boolean>> {
  const viaSsh = proxySshConfig(join(home, `ssh_config_ssh`), home, user, 'ssh');
  const viaTls = proxySshConfig(join(home, `ssh_config_tls`), home, user, 'tls');
  const env = userEnv(home);
  const ok = (r: { code: number | null; stdout: string }, want: string): boolean => r.code === 0 && r.stdout === want;
  return {
    'ssh ProxyCommand (SSH listener)': async () => ok(await runDetached('ssh', ['-F', viaSsh, `${LOCAL_USER}@web1`, 'echo', 'in-proxy'], env), 'in-proxy\n'),
    'ssh -J (direct-tcpip)': async () => {
      const f = userFiles(home, user);
      const jump = join(home, 'ssh_config_jump');
      writeFileSync(jump, [
        'Host *', `  IdentityFile ${f.key}`, `  CertificateFile ${f.cert}`, '  IdentitiesOnly yes', '  IdentityAgent none',
        `  UserKnownHostsFile ${f.knownHosts}`, '  StrictHostKeyChecking yes', '  BatchMode yes', '  ConnectTimeout 30', '',
      ].join('\n'));
      // OpenSSH opens a direct-tcpip channel to "web1" at the proxy; the node is checked by its host certificate.
      return ok(await runDetached('ssh', ['-F', jump, '-J', `${user}@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web1`, 'echo', 'in-jump'], env), 'in-jump\n');
    },
    'TLS tunnel': async () => ok(await runDetached('ssh', ['-F', viaTls, `${LOCAL_USER}@web1`, 'echo', 'in-tunnel'], env), 'in-tunnel\n'),
    'signed web API (postern ls)': async () => {
      const r = await runPostern(['ls', '--format', 'names'], { env });
      return r.code === 0 && r.stdout.includes('web1');
    },
  };
}

async function web(method: string, path: string, opts: { body?: unknown; cookie?: string } = {}): Promise<{ status: number; json: unknown; setCookie: string }> {
  const res = await request(`https://${c.serve.web}${path}`, {
    method: method as 'GET', dispatcher,
    headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(opts.cookie ? { cookie: opts.cookie } : {}) },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? (JSON.parse(text) as unknown) : undefined, setCookie: String(res.headers['set-cookie'] ?? '') };
}

/** A web login; the cookie when it worked. */
async function webLogin(user: string, secret: string, password = TEST_PASSWORD, otp?: string): Promise<{ status: number; message: string; cookie?: string }> {
  const r = await web('POST', '/webapi/sessions/web', { body: { user, password, otp: otp ?? await c.freshCode(user, secret) } });
  const cookie = /(__Host-postern_session=[^;]+)/.exec(r.setCookie)?.[1];
  return { status: r.status, message: (r.json as { error?: { message: string } } | undefined)?.error?.message ?? '', ...(cookie ? { cookie } : {}) };
}

/**
 * Opens the web terminal on web1 with a cookie: 'in' once the session frame came (then it
 * is closed), else the HTTP status the upgrade was refused with.
 */
function webTerminal(cookie: string): Promise<'in' | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://${c.serve.web}/webapi/terminal?node=web1&login=${LOCAL_USER}&cols=80&rows=24`, {
      headers: { origin: `https://${c.serve.web}`, cookie }, rejectUnauthorized: false,
    });
    ws.on('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.on('message', (d: Buffer, binary: boolean) => { if (!binary && d.toString('utf8').includes('"type":"session"')) { resolve('in'); ws.close(); } });
    ws.on('error', () => {});
    ws.on('close', (code) => reject(new Error(`the web terminal closed (${code}) without a session`)));
  });
}

/** Polls `refused` until it is true; returns the seconds it took, or fails after the deadline. */
async function secondsUntil(what: string, refused: () => Promise<boolean>, since: number): Promise<number> {
  for (;;) {
    if (await refused()) return (Date.now() - since) / 1000;
    assert.ok(Date.now() - since < BITE_DEADLINE_MS, `${what} still lets the old certificate in after ${BITE_DEADLINE_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  await c.start();
  alice = await c.user('alice', LOCAL_USER, ALICE_SECRET);
  // Bob's first home is kept aside: logging in again later writes a new key into home-bob.
  cpSync(await c.user('bob', LOCAL_USER, BOB_SECRET), bob, { recursive: true });
  // Dave signs up here, not in his test: it takes four of his TOTP codes, and auth accepts three
  // steps at a time, each once per user; by the time his test runs, the next step has come.
  dave = await c.user('dave', LOCAL_USER, DAVE_SECRET);
  await c.node('web1', 'env=prod');
});

after(async () => {
  await dispatcher.close();
  await c.stop();
});

test('the certificate names the account generation it was issued to', () => {
  const cert = parseCertificate(Buffer.from(readFileSync(userFiles(alice, 'alice').cert, 'utf8').split(' ')[1], 'base64'));
  assert.match(cert.extensions['postern-account@postern.dev'] ?? '', /^[A-Za-z0-9_-]{16}$/);
});

test('after users reset, the old certificate is refused within seconds at every surface, and the web cookie at once', async () => {
  const ways = surfaces(alice, 'alice');
  for (const [name, tryIt] of Object.entries(ways)) assert.ok(await tryIt(), `${name} works before the reset\n${c.serve.stderr().slice(-2000)}`);
  const login = await web('POST', '/webapi/sessions/web', { body: { user: 'alice', password: TEST_PASSWORD, otp: await c.freshCode('alice', ALICE_SECRET) } });
  assert.equal(login.status, 200, JSON.stringify(login.json));
  const cookie = /(__Host-postern_session=[^;]+)/.exec(login.setCookie)![1];
  assert.equal((await web('GET', '/webapi/sessions/web', { cookie })).status, 200);
  assert.equal(await webTerminal(cookie), 'in', 'the web terminal opens before the reset');

  const reset = await c.admin(['users', 'reset', 'alice']);
  assert.equal(reset.code, 0, reset.stderr);
  const t0 = Date.now();
  // The web session ended with the reset itself.
  const session = await web('GET', '/webapi/sessions/web', { cookie });
  assert.equal(session.status, 401, JSON.stringify(session.json));
  assert.equal((await web('GET', '/webapi/nodes', { cookie })).status, 401);
  assert.equal(await webTerminal(cookie), 401, 'the old cookie opens no web terminal');
  const bites: Record<string, number> = {};
  for (const [name, tryIt] of Object.entries(ways)) bites[name] = await secondsUntil(name, async () => !(await tryIt()), t0);
  console.log(`# seconds from users reset until the old certificate was refused: ${JSON.stringify(bites)}`);
  // Refused for good: each one again.
  for (const [name, tryIt] of Object.entries(ways)) assert.equal(await tryIt(), false, `${name} let the old certificate in again`);
  const ls = await runPostern(['ls'], { env: userEnv(alice) });
  assert.equal(ls.code, 4, ls.stderr);
  assert.match(ls.stderr, /no longer belongs to a live account/);
  // The audit trail and the refusal did not need a restart or a new certificate to be issued.
  assert.match(c.serve.stderr(), /refused a certificate|no longer belongs/);
});

test('after users rm and users add of the same name, the old certificate never works again', async () => {
  const ways = surfaces(bob, 'bob');
  const oldCert = readFileSync(userFiles(bob, 'bob').cert, 'utf8');
  assert.ok(await ways['signed web API (postern ls)'](), 'bob works before');
  assert.equal((await c.admin(['users', 'rm', 'bob'])).code, 0);
  const add = await c.admin(['users', 'add', 'bob', '--logins', LOCAL_USER]);
  assert.equal(add.code, 0, add.stderr);
  const t0 = Date.now();
  for (const [name, tryIt] of Object.entries(ways)) await secondsUntil(`${name} (re-created, not signed up)`, async () => !(await tryIt()), t0);
  // The new bob signs up and logs in (TestCluster adds the user itself, so once more from scratch):
  // the new certificate works, the old one (kept in its own copy of the home) still not.
  assert.equal((await c.admin(['users', 'rm', 'bob'])).code, 0);
  const fresh = await c.user('bob', LOCAL_USER, BOB_SECRET);
  assert.ok(await surfaces(fresh, 'bob')['signed web API (postern ls)'](), 'the new account\'s certificate works');
  assert.notEqual(readFileSync(userFiles(fresh, 'bob').cert, 'utf8'), oldCert);
  for (const [name, tryIt] of Object.entries(ways)) assert.equal(await tryIt(), false, `${name} let the re-created name's old certificate in`);
});

test('after users rm alone, the certificate and the web cookie are refused at every surface', async () => {
  const home = await c.user('carol', LOCAL_USER, CAROL_SECRET);
  const ways = surfaces(home, 'carol');
  for (const [name, tryIt] of Object.entries(ways)) assert.ok(await tryIt(), `${name} works before the rm`);
  const { cookie } = await webLogin('carol', CAROL_SECRET);
  assert.ok(cookie);
  assert.equal(await webTerminal(cookie), 'in');
  assert.equal((await c.admin(['users', 'rm', 'carol'])).code, 0);
  const t0 = Date.now();
  assert.equal((await web('GET', '/webapi/nodes', { cookie })).status, 401);
  assert.equal(await webTerminal(cookie), 401);
  const bites: Record<string, number> = {};
  for (const [name, tryIt] of Object.entries(ways)) bites[name] = await secondsUntil(`${name} (removed)`, async () => !(await tryIt()), t0);
  console.log(`# seconds from users rm until the certificate was refused: ${JSON.stringify(bites)}`);
  for (const [name, tryIt] of Object.entries(ways)) assert.equal(await tryIt(), false, `${name} let a removed user's certificate in again`);
});

test('locked out by failed logins: new logins are refused, the certificate already held keeps working until it expires', async () => {
  const home = dave;
  const ways = surfaces(home, 'dave');
  const { cookie } = await webLogin('dave', DAVE_SECRET);
  assert.ok(cookie);
  // lockout_attempts is 5 by default (a wrong code: no wait for a fresh one).
  for (let i = 0; i < 5; i++) assert.equal((await webLogin('dave', DAVE_SECRET, 'not the password at all', '000000')).status, 401);
  const locked = await webLogin('dave', DAVE_SECRET, TEST_PASSWORD, '000000');
  assert.notEqual(locked.status, 200);
  assert.match(locked.message, /too many failed logins: the user is locked until/);
  // The right password and a fresh code: still refused.
  const cli = await runPostern(['login', '--proxy', c.serve.web, '--user', 'dave', '--password-stdin', '--otp', await c.freshCode('dave', DAVE_SECRET), '--ca-pin', c.serve.caPin, '--add-keys-to-agent', 'no'],
    { env: userEnv(home), input: TEST_PASSWORD + '\n' });
  assert.notEqual(cli.code, 0);
  assert.match(cli.stderr, /too many failed logins/);
  const users = await c.admin(['users', 'ls', '--format', 'json']);
  assert.equal((JSON.parse(users.stdout) as Array<{ name: string; status: string }>).find((u) => u.name === 'dave')?.status, 'locked');
  // What is already issued is not touched by a lockout (a reset, rm or `postern lock` ends it).
  for (const [name, tryIt] of Object.entries(ways)) assert.ok(await tryIt(), `${name} refused the locked-out user's live certificate`);
  assert.equal(await webTerminal(cookie), 'in', 'the web session from before the lockout still opens a terminal');
});

/**
 * The cluster's core, end to end against the real programs: `postern serve`, `users add`, `signup`
 * with oathtool codes, `login` into a real ssh-agent, a real sshd trusting the user CA,
 * the errors of bad credentials and lockout, a proxy alone against auth, and a restart.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPostern, runMain } from '../helpers/cli.ts';
import { WebClient } from '../../src/client/web-client.ts';
import { startServe } from '../helpers/serve.ts';
import type { ServeProcess } from '../helpers/serve.ts';
import { startSshd, startAgent, oathtoolCode, LOCAL_USER } from '../helpers/openssh.ts';
import type { Sshd, Agent } from '../helpers/openssh.ts';
import { waitFor } from '../helpers/wait.ts';

let serve: ServeProcess;
let agent: Agent;
let sshd: Sshd;
const cleanup: Array<() => Promise<unknown>> = [];
const home = mkdtempSync(join(tmpdir(), 'postern-home-'));
const tshHome = join(home, '.tsh');

before(async () => {
  serve = await startServe();
  agent = await startAgent();
  cleanup.push(() => agent.stop());
  const userCa = await runPostern(['ca', 'export', '--type', 'user', '--data-dir', serve.dataDir]);
  assert.equal(userCa.code, 0, userCa.stderr);
  sshd = await startSshd({ trustedUserCaKeys: userCa.stdout });
  cleanup.push(() => sshd.stop());
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  await serve?.stop();
});

function env(extra: Record<string, string> = {}): Record<string, string> {
  return { TSH_HOME: tshHome, SSH_AUTH_SOCK: agent.socket, ...extra };
}

/** Adds a user and signs them up with a TOTP secret of ours; returns the secret. */
async function addAndSignup(name: string, logins: string, secret: string, web = serve.web, pin = serve.caPin): Promise<void> {
  const add = await runPostern(['users', 'add', name, '--logins', logins, '--format', 'json', '--data-dir', serve.dataDir]);
  assert.equal(add.code, 0, add.stderr);
  const invite = JSON.parse(add.stdout) as { user: string; inviteUrl: string; expiresAt: string };
  assert.equal(invite.user, name);
  assert.match(invite.inviteUrl, /^https:\/\/.+\/web\/invite\/[A-Za-z0-9_-]+$/);
  const url = invite.inviteUrl.replace(/^https:\/\/[^/]+/, `https://${web}`);
  // This step's code; the first login uses the next step's (accepted within ±1), so neither
  // goes stale on a loaded machine and the login's code is never a replay.
  const signup = await runPostern(['signup', url, '--password-stdin', '--totp-secret', secret, '--otp', oathtoolCode(secret, 0), '--ca-pin', pin],
    { input: 'correct horse battery staple\n' });
  assert.equal(signup.code, 0, signup.stdout + signup.stderr);
  assert.match(signup.stdout, /Signed up as/);
  assert.match(signup.stdout, /otpauth:\/\/totp\//);
}

async function login(user: string, otp: string, extra: string[] = [], password = 'correct horse battery staple', web = serve.web, pin = serve.caPin) {
  return runPostern(['login', '--proxy', web, '--user', user, '--password-stdin', '--otp', otp, '--ca-pin', pin, ...extra], { env: env(), input: password + '\n' });
}

const SECRET_A = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const step = (): number => Math.floor(Date.now() / 30_000);
let aliceStep = 0;

test('1. serve, users add, signup with an oathtool code, login: files with their modes, certificate in ssh-agent', async () => {
  await addAndSignup('alice', `${LOCAL_USER},deploy`, SECRET_A);
  aliceStep = step() + 1;
  const r = await login('alice', oathtoolCode(SECRET_A, 1));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Logged in as: alice/);
  const keyDir = join(tshHome, 'keys', '127.0.0.1');
  const mode = (p: string): number => statSync(p).mode & 0o777;
  assert.equal(mode(tshHome), 0o700);
  assert.equal(mode(keyDir), 0o700);
  assert.equal(mode(join(keyDir, 'alice')), 0o600);
  assert.ok(existsSync(join(keyDir, 'alice.pub')));
  const certPath = join(keyDir, 'alice-ssh', 'test.example-cert.pub');
  assert.ok(existsSync(certPath));
  const kh = readFileSync(join(keyDir, 'known_hosts'), 'utf8');
  assert.match(kh, /^@cert-authority \* ssh-ed25519 /m);
  assert.match(kh, /^\[127\.0\.0\.1\]:\d+ ssh-ed25519 /m);
  assert.ok(existsSync(join(tshHome, '127.0.0.1.yaml')));
  assert.equal(readFileSync(join(tshHome, 'current-profile'), 'utf8').trim(), '127.0.0.1');
  // ssh-keygen reads what we wrote.
  assert.equal(execFileSync('ssh-keygen', ['-y', '-f', join(keyDir, 'alice')]).toString().trim().split(' ')[1], readFileSync(join(keyDir, 'alice.pub'), 'utf8').split(' ')[1]);
  const listed = execFileSync('ssh-add', ['-L'], { env: { ...process.env, SSH_AUTH_SOCK: agent.socket } }).toString();
  assert.match(listed, /ssh-ed25519-cert-v01@openssh.com /);
  assert.ok(listed.includes(readFileSync(certPath, 'utf8').split(' ')[1]));

  const status = await runPostern(['status', '--format', 'json'], { env: env() });
  assert.equal(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout);
  assert.equal(s.user, 'alice');
  assert.equal(s.cluster, 'test.example');
  assert.deepEqual(s.logins, [LOCAL_USER, 'deploy']);
  assert.equal(s.inAgent, true);
  const left = Date.parse(s.validUntil) - Date.now();
  assert.ok(left > 11.9 * 3600_000 && left <= 12 * 3600_000, `default TTL is 12h, got ${left} ms`);
});

test('2. a real sshd trusting `ca export --type user` accepts a login in the certificate and refuses one that is not', async () => {
  const keyDir = join(tshHome, 'keys', '127.0.0.1');
  const ssh = (login: string) => spawnSync('ssh', [
    '-i', join(keyDir, 'alice'), '-o', `CertificateFile=${join(keyDir, 'alice-ssh', 'test.example-cert.pub')}`,
    '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'IdentityAgent=none', '-p', String(sshd.port), `${login}@127.0.0.1`, 'echo', 'ok-from-sshd',
  ], { encoding: 'utf8', timeout: 90_000 });
  const good = ssh(LOCAL_USER);
  assert.equal(good.status, 0, `${good.stderr}\n--- sshd ---\n${sshd.log()}`);
  assert.equal(good.stdout.trim(), 'ok-from-sshd');
  const bad = ssh('deploy-not-in-cert');
  assert.equal(bad.status, 255);
  assert.match(bad.stderr, /Permission denied/);

  // The proxy serves the same CA key, unauthenticated, for sshd provisioning.
  const [host, port] = serve.web.split(':');
  const web = new WebClient({ host, port: Number(port), caPin: serve.caPin });
  const exported = (await runPostern(['ca', 'export', '--type', 'user', '--data-dir', serve.dataDir])).stdout;
  assert.equal(await web.caKeys('user'), exported);
  assert.match(await web.caKeys('host'), /^ssh-ed25519 \S+ postern host CA test\.example\n$/);
  await web.close();
});

test('2b. ssh-keygen -L shows the TTL that was asked for', async () => {
  const secret = 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ';
  await addAndSignup('carol', LOCAL_USER, secret);
  const home2 = mkdtempSync(join(tmpdir(), 'postern-home-'));
  const r = await runPostern(['login', '--proxy', serve.web, '--user', 'carol', '--password-stdin', '--otp', oathtoolCode(secret, 1), '--ca-pin', serve.caPin, '--ttl', '2h', '--add-keys-to-agent', 'no'],
    { env: { TSH_HOME: home2 }, input: 'correct horse battery staple\n' });
  assert.equal(r.code, 0, r.stderr);
  const out = execFileSync('ssh-keygen', ['-L', '-f', join(home2, 'keys', '127.0.0.1', 'carol-ssh', 'test.example-cert.pub')], { env: { ...process.env, TZ: 'UTC' } }).toString();
  const m = /Valid: from (\S+) to (\S+)/.exec(out);
  assert.ok(m, out);
  const span = Date.parse(m[2] + 'Z') - Date.parse(m[1] + 'Z');
  assert.equal(span, 2 * 3600_000 + 60_000, 'two hours, plus the minute of clock skew before now');
  assert.match(out, /Key ID: "carol"/);
  assert.match(out, /permit-pty/);
});

test('3. wrong password, wrong code, replayed code, bad invites, unknown user, lockout: each its clear error', async () => {
  const secret = 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U';
  await addAndSignup('bob', LOCAL_USER, secret);
  const badCreds = /error: invalid user name, password or second factor/;

  const code = oathtoolCode(secret, 1);
  const ok = await login('bob', code, ['--add-keys-to-agent', 'no']);
  assert.equal(ok.code, 0, ok.stderr);
  const replay = await login('bob', code, ['--add-keys-to-agent', 'no']);
  assert.equal(replay.code, 1);
  assert.match(replay.stderr, /error: this one-time code was already used/);
  assert.match(replay.stderr, /hint: Wait for the next code/);

  const unknown = await login('nobody', '123456');
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, badCreds);

  // A fresh user for the lockout, so the failures above do not count.
  const secretD = 'ONSWG4TFOQYTEMZUGU3DOOBZGAYTEMZU';
  await addAndSignup('dora', LOCAL_USER, secretD);
  const wrongPw = await login('dora', oathtoolCode(secretD, 1), [], 'not the password at all');
  assert.equal(wrongPw.code, 1);
  assert.match(wrongPw.stderr, badCreds);
  const wrongCode = await login('dora', '000000');
  assert.match(wrongCode.stderr, badCreds);
  assert.equal(wrongPw.stderr.replace(/\s+/g, ' '), wrongCode.stderr.replace(/\s+/g, ' '), 'the error never says which part was wrong');
  for (let i = 0; i < 3; i++) assert.match((await login('dora', '000000')).stderr, badCreds);
  const locked = await login('dora', oathtoolCode(secretD, 1));
  assert.equal(locked.code, 1);
  assert.match(locked.stderr, /error: too many failed logins: the user is locked until \d{4}-\d\d-\d\dT/);
  const users = await runPostern(['users', 'ls', '--format', 'json', '--data-dir', serve.dataDir]);
  assert.equal(JSON.parse(users.stdout).find((u: { name: string }) => u.name === 'dora').status, 'locked');

  // Every success and failure is an audit event.
  const audit = await runPostern(['audit', '--user', 'dora', '--since', '10m', '--format', 'json', '--data-dir', serve.dataDir]);
  assert.equal(audit.code, 0, audit.stderr);
  const events = JSON.parse(audit.stdout) as Array<{ type: string; success: boolean; message?: string; addr?: string }>;
  assert.equal(events.filter((e) => e.type === 'user.login.failure').length, 6);
  assert.ok(events.some((e) => e.type === 'user.login.failure' && e.message === 'wrong password' && e.addr === '127.0.0.1'));
  assert.equal(events.filter((e) => e.type === 'user.locked').length, 1);
  assert.ok(events.every((e) => e.type === 'user.signup' || e.success === false));
  const bobEvents = JSON.parse((await runPostern(['audit', '--user', 'bob', '--type', 'user.login', '--format', 'json', '--data-dir', serve.dataDir])).stdout) as Array<{ type: string; success: boolean }>;
  assert.deepEqual(bobEvents.map((e) => `${e.type}:${e.success}`), ['user.login:true', 'user.login.failure:false']);
  const text = await runPostern(['audit', '--type', 'cert.issued', '--data-dir', serve.dataDir]);
  assert.match(text.stdout, /cert\.issued\s+bob\s+127\.0\.0\.1\s+ok\s+serial=\d+/);
  const badSince = await runPostern(['audit', '--since', 'yesterday-ish', '--data-dir', serve.dataDir]);
  assert.equal(badSince.code, 2);
  assert.match(badSince.stderr, /invalid --since/);

  // Invites: used, unknown, and expired (an invite is revoked by reset, so the old one is dead).
  const add = await runPostern(['users', 'add', 'erin', '--logins', LOCAL_USER, '--format', 'json', '--data-dir', serve.dataDir]);
  const first = JSON.parse(add.stdout).inviteUrl.replace(/^https:\/\/[^/]+/, `https://${serve.web}`);
  const reset = await runPostern(['users', 'reset', 'erin', '--format', 'json', '--data-dir', serve.dataDir]);
  assert.equal(reset.code, 0, reset.stderr);
  const revoked = await runPostern(['signup', first, '--password-stdin', '--otp', '123456', '--ca-pin', serve.caPin], { input: 'correct horse battery staple\n' });
  assert.equal(revoked.code, 1);
  assert.match(revoked.stderr, /error: the invite is unknown, already used or expired/);
  const usedUrl = JSON.parse(reset.stdout).inviteUrl.replace(/^https:\/\/[^/]+/, `https://${serve.web}`);
  const secretE = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  const once = await runPostern(['signup', usedUrl, '--password-stdin', '--totp-secret', secretE, '--otp', oathtoolCode(secretE), '--ca-pin', serve.caPin], { input: 'correct horse battery staple\n' });
  assert.equal(once.code, 0, once.stderr);
  const twice = await runPostern(['signup', usedUrl, '--password-stdin', '--totp-secret', secretE, '--otp', oathtoolCode(secretE), '--ca-pin', serve.caPin], { input: 'correct horse battery staple\n' });
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /already used or expired/);
  const short = await runPostern(['users', 'add', 'fred', '--logins', LOCAL_USER, '--ttl', '1s', '--format', 'json', '--data-dir', serve.dataDir]);
  const shortUrl = JSON.parse(short.stdout).inviteUrl.replace(/^https:\/\/[^/]+/, `https://${serve.web}`);
  const shortEnds = Date.parse((JSON.parse(short.stdout) as { expiresAt: string }).expiresAt);
  await waitFor(() => Date.now() > shortEnds, { what: "fred's one-second invite to run out", timeoutMs: 10_000 });
  const expired = await runPostern(['signup', shortUrl, '--password-stdin', '--otp', '123456', '--ca-pin', serve.caPin], { input: 'correct horse battery staple\n' });
  assert.equal(expired.code, 1);
  assert.match(expired.stderr, /error: the invite (is unknown, already used or expired|expired at)/);

  // A short password is refused with what to do.
  const shortPw = await runPostern(['users', 'reset', 'fred', '--format', 'json', '--data-dir', serve.dataDir]);
  const shortPwUrl = JSON.parse(shortPw.stdout).inviteUrl.replace(/^https:\/\/[^/]+/, `https://${serve.web}`);
  const tooShort = await runPostern(['signup', shortPwUrl, '--password-stdin', '--otp', '123456', '--ca-pin', serve.caPin], { input: 'short\n' });
  assert.equal(tooShort.code, 1);
  assert.match(tooShort.stderr, /error: password is too short: it needs at least 12 characters/);

  // users rm: the user is gone, and so are their logins.
  await runPostern(['users', 'add', 'tmp-user', '--logins', LOCAL_USER, '--data-dir', serve.dataDir]);
  const rm = await runPostern(['users', 'rm', 'tmp-user', '--data-dir', serve.dataDir]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.ok(!(await runPostern(['users', 'ls', '--data-dir', serve.dataDir])).stdout.includes('tmp-user'));
  const rmAgain = await runPostern(['users', 'rm', 'tmp-user', '--data-dir', serve.dataDir]);
  assert.equal(rmAgain.code, 1);
  assert.match(rmAgain.stderr, /error: user "tmp-user" does not exist/);

  // No terminal and no password flag: a clear error, exit 2.
  const noTty = await runPostern(['login', '--proxy', serve.web, '--user', 'bob', '--ca-pin', serve.caPin], { env: env() });
  assert.equal(noTty.code, 2);
  assert.match(noTty.stderr, /no terminal to ask on/);
  assert.match(noTty.stderr, /hint: Pass it with --password-stdin/);

  // No pin and no --insecure: the self-signed certificate is refused, and the hint says what to do.
  const noPin = await runPostern(['login', '--proxy', serve.web, '--user', 'bob', '--password-stdin', '--otp', '1'], { env: { TSH_HOME: mkdtempSync(join(tmpdir(), 'h-')) }, input: 'x\n' });
  assert.equal(noPin.code, 255);
  assert.match(noPin.stderr, /cannot verify the proxy's TLS certificate/);
  assert.match(noPin.stderr, /--ca-pin/);
});

test('4. a proxy started with --roles proxy against auth issues certificates, and its data dir holds no CA key', async () => {
  const tok = await runPostern(['tokens', 'add', '--type', 'proxy', '--ttl', '10m', '--format', 'json', '--data-dir', serve.dataDir]);
  assert.equal(tok.code, 0, tok.stderr);
  const { token, caPin } = JSON.parse(tok.stdout) as { token: string; caPin: string };
  assert.equal(caPin, serve.caPin);
  const proxy = await startServe({ args: ['--roles', 'proxy', '--auth-server', serve.auth, '--join-token', token, '--ca-pin', caPin, '--web-addr', '127.0.0.1:0', '--ssh-addr', '127.0.0.1:0'] });
  cleanup.push(() => proxy.stop());
  const secret = 'NBSWY3DPNBSWY3DPNBSWY3DPNBSWY3DP';
  await addAndSignup('gina', LOCAL_USER, secret, proxy.web, caPin);
  const home2 = mkdtempSync(join(tmpdir(), 'postern-home-'));
  const r = await runPostern(['login', '--proxy', proxy.web, '--user', 'gina', '--password-stdin', '--otp', oathtoolCode(secret, 1), '--ca-pin', caPin, '--add-keys-to-agent', 'no'],
    { env: { TSH_HOME: home2 }, input: 'correct horse battery staple\n' });
  assert.equal(r.code, 0, r.stderr + proxy.stderr());
  const cert = execFileSync('ssh-keygen', ['-L', '-f', join(home2, 'keys', '127.0.0.1', 'gina-ssh', 'test.example-cert.pub')]).toString();
  assert.match(cert, /Key ID: "gina"/);

  // Every file of the proxy's data dir: no database, and no private key but its own host, TLS and peer-relay TLS keys.
  const files: string[] = [];
  const walk = (d: string): void => { for (const e of readdirSync(d, { withFileTypes: true })) (e.isDirectory() ? walk(join(d, e.name)) : files.push(join(d, e.name))); };
  walk(proxy.dataDir);
  assert.ok(!files.some((f) => f.endsWith('.db')), files.join('\n'));
  const withKeys = files.filter((f) => /PRIVATE KEY/.test(readFileSync(f, 'utf8')));
  assert.deepEqual(withKeys.map((f) => f.slice(proxy.dataDir.length)).sort(), ['/proxy/identity.json', '/proxy/peer.key', '/proxy/ssh_host_key', '/proxy/web.key']);
  const caPub = (await runPostern(['ca', 'export', '--type', 'user', '--data-dir', serve.dataDir])).stdout.split(' ')[1];
  const hostPub = execFileSync('ssh-keygen', ['-y', '-f', join(proxy.dataDir, 'proxy', 'ssh_host_key')]).toString().split(' ')[1];
  assert.notEqual(hostPub, caPub);

  // A wrong token is refused with a clear error.
  const bad = await runPostern(['serve', '--roles', 'proxy', '--auth-server', serve.auth, '--join-token', 'ab'.repeat(24), '--ca-pin', caPin,
    '--web-addr', '127.0.0.1:0', '--data-dir', mkdtempSync(join(tmpdir(), 'postern-data-'))]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /error: the join token is invalid or expired/);
});

test('5. a restart keeps CAs, users and settings; certificates from before still work', async () => {
  const caBefore = (await runPostern(['ca', 'export', '--type', 'user', '--data-dir', serve.dataDir])).stdout;
  const code = await serve.stop();
  assert.equal(code, 0, 'SIGTERM shuts down cleanly');
  serve = await startServe({ dataDir: serve.dataDir });
  const caAfter = (await runPostern(['ca', 'export', '--type', 'user', '--data-dir', serve.dataDir])).stdout;
  assert.equal(caAfter, caBefore);
  const users = JSON.parse((await runPostern(['users', 'ls', '--format', 'json', '--data-dir', serve.dataDir])).stdout) as Array<{ name: string; status: string }>;
  assert.deepEqual(users.map((u) => u.name).sort(), ['alice', 'bob', 'carol', 'dora', 'erin', 'fred', 'gina']);
  assert.equal(users.find((u) => u.name === 'dora')?.status, 'locked', 'the lock survives the restart');
  const keyDir = join(tshHome, 'keys', '127.0.0.1');
  const ssh = spawnSync('ssh', [
    '-i', join(keyDir, 'alice'), '-o', `CertificateFile=${join(keyDir, 'alice-ssh', 'test.example-cert.pub')}`,
    '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'IdentityAgent=none', '-p', String(sshd.port), `${LOCAL_USER}@127.0.0.1`, 'true',
  ], { encoding: 'utf8', timeout: 90_000 });
  assert.equal(ssh.status, 0, ssh.stderr);
  // The new process's port differs; log in again through it, with a code of a later step than
  // test 1 used (a code is good once).
  await waitFor(() => step() + 1 > aliceStep, { what: 'a TOTP step alice has not used', timeoutMs: 35_000, intervalMs: 250 });
  const again = await login('alice', oathtoolCode(SECRET_A, 1), ['--proxy', serve.web]);
  assert.equal(again.code, 0, again.stderr + serve.stderr());

  // status on a clock past the certificate's end: says so, exit 4 (text and json).
  const later = () => new Date(Date.now() + 13 * 3600_000);
  const expired = await runMain(['status'], { env: env(), now: later });
  assert.equal(expired.code, 4);
  assert.match(expired.stdout, /\[EXPIRED\]/);
  assert.match(expired.stderr, /error: the certificate for alice expired at .*\nhint: Log in again with:  postern login/);
  const expiredJson = await runMain(['status', '--format', 'json'], { env: env(), now: later });
  assert.equal(expiredJson.code, 4);
  assert.equal(JSON.parse(expiredJson.stdout).expired, true);

  // logout: keys, certificate and profile gone, and the agent forgets them.
  const agentKeys = () => spawnSync('ssh-add', ['-L'], { env: { ...process.env, SSH_AUTH_SOCK: agent.socket }, encoding: 'utf8' }).stdout;
  assert.match(agentKeys(), /alice@test\.example/);
  const out = await runPostern(['logout'], { env: env() });
  assert.equal(out.code, 0, out.stderr);
  assert.ok(!existsSync(join(tshHome, 'keys', '127.0.0.1', 'alice')));
  assert.ok(!existsSync(join(tshHome, '127.0.0.1.yaml')));
  assert.doesNotMatch(agentKeys(), /alice@test\.example/);
  const after = await runPostern(['status'], { env: env() });
  assert.equal(after.code, 4);
  assert.match(after.stderr, /error: not logged in/);
});

test('second_factor off: sign-up and login with a password alone', async () => {
  const solo = await startServe({ args: ['--web-addr', '127.0.0.1:0', '--auth-addr', '127.0.0.1:0', '--ssh-addr', '127.0.0.1:0', '--cluster-name', 'test.example', '--second-factor', 'off'] });
  cleanup.push(() => solo.stop());
  const add = await runPostern(['users', 'add', 'olga', '--logins', LOCAL_USER, '--format', 'json', '--data-dir', solo.dataDir]);
  const url = JSON.parse(add.stdout).inviteUrl.replace(/^https:\/\/[^/]+/, `https://${solo.web}`);
  const signup = await runPostern(['signup', url, '--password-stdin', '--ca-pin', solo.caPin], { input: 'correct horse battery staple\n' });
  assert.equal(signup.code, 0, signup.stderr);
  assert.doesNotMatch(signup.stdout, /otpauth/);
  const home2 = mkdtempSync(join(tmpdir(), 'postern-home-'));
  const r = await runPostern(['login', '--proxy', solo.web, '--user', 'olga', '--password-stdin', '--ca-pin', solo.caPin, '--add-keys-to-agent', 'no'],
    { env: { TSH_HOME: home2 }, input: 'correct horse battery staple\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Logged in as: olga/);
});

test('a port in use and a bad config stop serve with a clear error', async () => {
  const [host, port] = [serve.auth.split(':')[0], serve.auth.split(':')[1]];
  const busy = await runPostern(['serve', '--data-dir', mkdtempSync(join(tmpdir(), 'postern-data-')), '--auth-addr', `${host}:${port}`, '--web-addr', '127.0.0.1:0', '--cluster-name', 'x']);
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, /error: cannot listen on 127\.0\.0\.1:\d+: the address is already in use/);
  assert.match(busy.stderr, /hint: .*--auth-addr/);
  const badRole = await runPostern(['serve', '--roles', 'relay', '--data-dir', mkdtempSync(join(tmpdir(), 'postern-data-'))]);
  assert.equal(badRole.code, 1);
  assert.match(badRole.stderr, /error: unknown role "relay" in --roles/);
});

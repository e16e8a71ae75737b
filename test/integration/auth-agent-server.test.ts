/**
 * A web session's agent against the real OpenSSH tools. A tiny adapter serves
 * auth.webSessionAgent on a unix socket (length-prefixed frames, as an ssh-agent speaks);
 * `ssh-add -L` lists the certificate and the key, `ssh-keygen -L` reads the certificate,
 * `ssh-keygen -Y sign` signs through it and `-Y check-novalidate` verifies, `ssh` logs in to
 * a real sshd that trusts only the user CA, and `ssh-add -D` / adding a key are refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteBackend } from '../../src/storage/sqlite.ts';
import type { Backend } from '../../src/storage/backend.ts';
import { AuthServer, localAuthClient } from '../../src/auth/auth-server.ts';
import type { AuthClient } from '../../src/api/auth-client.ts';
import { totpCode, newTotpSecret } from '../../src/auth/totp.ts';
import { startSshd, LOCAL_USER } from '../helpers/openssh.ts';
import { TEST_SCRYPT_LOG2N } from '../helpers/auth.ts';
import type { Sshd } from '../helpers/openssh.ts';

const PASSWORD = 'correct horse battery staple';
const work = mkdtempSync(join(tmpdir(), 'postern-agentsrv-'));
let backend: Backend;
let admin: AuthClient;
let proxy: AuthClient;
let sessionId: string;
let socketPath: string;
let server: Server;
let sshd: Sshd;
const requests: number[] = [];

/** What a proxy does with auth's agent: frame by frame over the Auth API. */
function serveAgent(auth: AuthClient, id: () => string, path: string): Promise<Server> {
  const srv = createServer((sock: Socket) => {
    let buf = Buffer.alloc(0);
    let chain = Promise.resolve();
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const msg = buf.subarray(4, 4 + buf.readUInt32BE(0));
        buf = buf.subarray(4 + msg.length);
        requests.push(msg[0] ?? -1);
        chain = chain.then(async () => {
          const answer = await auth.webSessionAgent({ sessionId: id(), message: msg.toString('base64') })
            .then((r) => Buffer.from(r.message, 'base64'), () => Buffer.of(5));
          const len = Buffer.alloc(4);
          len.writeUInt32BE(answer.length);
          sock.write(Buffer.concat([len, answer]));
        });
      }
    });
    sock.on('error', () => {});
  });
  return new Promise((resolve) => srv.listen(path, () => resolve(srv)));
}

function run(cmd: string, args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: { ...process.env, SSH_AUTH_SOCK: socketPath, ...opts.env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    // A program that exits before reading its stdin (ssh-add -L) must not fail the test with EPIPE.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}

before(async () => {
  backend = await openSqliteBackend({ dataDir: join(work, 'data') });
  const auth = await AuthServer.open({ backend, clock: { now: () => new Date() }, clusterName: 'c.example', passwordCost: TEST_SCRYPT_LOG2N });
  admin = localAuthClient(auth, { role: 'admin', name: 'admin' });
  proxy = localAuthClient(auth, { role: 'proxy', name: 'p1' });
  const inv = await admin.createUser({ name: 'alice', logins: [LOCAL_USER, 'deploy'], roles: ['access'], inviteTtlMs: 60_000 });
  const secret = newTotpSecret();
  const now = Date.now();
  await proxy.acceptInvite({ token: inv.inviteUrl.split('/').pop()!, password: PASSWORD, totpSecret: secret, otp: totpCode(secret, new Date(now - 30_000)), clientAddr: '127.0.0.1' });
  const s = await proxy.createWebSession({ user: 'alice', password: PASSWORD, otp: totpCode(secret, new Date(now)), clientAddr: '127.0.0.1' });
  sessionId = s.sessionId;
  socketPath = join(work, 'agent.sock');
  server = await serveAgent(proxy, () => sessionId, socketPath);
  sshd = await startSshd({ trustedUserCaKeys: (await admin.caKeys({ type: 'user' }))[0]! });
});
after(async () => {
  await new Promise((r) => server?.close(r));
  await sshd?.stop();
  await backend?.close();
});

test('ssh-add -L lists the session certificate (user CA, the logins as principals) and its plain key', async () => {
  const list = await run('ssh-add', ['-L']);
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.equal(lines.length, 2, list.stdout);
  assert.match(lines[0]!, /^ssh-ed25519-cert-v01@openssh\.com /);
  assert.match(lines[1]!, /^ssh-ed25519 /);
  assert.equal(lines[0]!.split(' ')[1] !== lines[1]!.split(' ')[1], true);
  writeFileSync(join(work, 'session-cert.pub'), lines[0] + '\n');
  const shown = await run('ssh-keygen', ['-L', '-f', join(work, 'session-cert.pub')]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /Type: ssh-ed25519-cert-v01@openssh\.com user certificate/);
  assert.match(shown.stdout, new RegExp(`Principals: \\n\\s+${LOCAL_USER}\\n\\s+deploy\\n`));
  assert.match(shown.stdout, /Key ID: "alice"/);
  writeFileSync(join(work, 'user_ca.pub'), (await admin.caKeys({ type: 'user' }))[0]! + '\n');
  const caFp = (await run('ssh-keygen', ['-lf', join(work, 'user_ca.pub')])).stdout.split(' ')[1]!;
  assert.ok(shown.stdout.includes(`Signing CA: ED25519 ${caFp}`), `${shown.stdout}\nCA ${caFp}`);
});

test('ssh-keygen -Y sign signs through the agent and the signature verifies against the session key', async () => {
  const pub = (await run('ssh-add', ['-L'])).stdout.trim().split('\n')[1]!;
  const pubPath = join(work, 'session.pub');
  writeFileSync(pubPath, pub + '\n');
  const dataPath = join(work, 'data.txt');
  writeFileSync(dataPath, 'sign me through auth\n');
  const sign = await run('ssh-keygen', ['-Y', 'sign', '-f', pubPath, '-n', 'postern-test', dataPath]);
  assert.equal(sign.code, 0, sign.stderr);
  const sig = readFileSync(`${dataPath}.sig`, 'utf8');
  assert.match(sig, /BEGIN SSH SIGNATURE/);
  const check = await run('ssh-keygen', ['-Y', 'check-novalidate', '-n', 'postern-test', '-s', `${dataPath}.sig`], { input: 'sign me through auth\n' });
  assert.equal(check.code, 0, check.stdout + check.stderr);
  const forged = await run('ssh-keygen', ['-Y', 'check-novalidate', '-n', 'postern-test', '-s', `${dataPath}.sig`], { input: 'something else\n' });
  assert.notEqual(forged.code, 0, 'the signature covers the data');
  assert.ok(requests.includes(13), 'a SIGN_REQUEST reached auth');
});

test('ssh logs in to a real sshd that trusts only the user CA, with the agent as its only identity', async () => {
  const r = await run('ssh', ['-F', 'none', '-p', String(sshd.port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', `IdentityAgent=${socketPath}`, '-o', 'ConnectTimeout=30', `${LOCAL_USER}@127.0.0.1`, 'echo web-session-ok']);
  assert.equal(r.code, 0, `${r.stderr}\n--- sshd ---\n${sshd.log()}`);
  assert.equal(r.stdout.trim().split('\n').at(-1), 'web-session-ok');
  assert.match(sshd.log(), /Accepted publickey for \S+ .*ED25519-CERT/);
});

test('the agent refuses changes (ssh-add -D, adding a key) and everything after the session ends', async () => {
  const del = await run('ssh-add', ['-D']);
  assert.notEqual(del.code, 0, 'removing keys fails');
  const keyPath = join(work, 'other');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyPath]);
  const add = await run('ssh-add', [keyPath]);
  assert.notEqual(add.code, 0, 'adding keys fails');
  assert.equal((await run('ssh-add', ['-L'])).stdout.trim().split('\n').length, 2, 'still just the session key');
  await proxy.deleteWebSession({ sessionId, clientAddr: '127.0.0.1' });
  const after = await run('ssh-add', ['-L']);
  assert.notEqual(after.code, 0, 'a revoked session serves no identity');
  const r = await run('ssh', ['-F', 'none', '-p', String(sshd.port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', `IdentityAgent=${socketPath}`, '-o', 'IdentitiesOnly=no', `${LOCAL_USER}@127.0.0.1`, 'true'], { env: { HOME: work } });
  assert.equal(r.code, 255, 'no way in without the session');
});

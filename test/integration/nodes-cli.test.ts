/**
 * Issue 3, the admin's side, against a real `postern serve`: `nodes add` with a host key from
 * `ssh-keygen`, a host certificate that `ssh-keygen -L` reads and that a real sshd presents to
 * a real `ssh` trusting only the host CA, the user certificate from `postern login` accepted
 * by that sshd; `nodes ls|update|renew|rm`, `roles add|ls|rm` (flags and YAML), and
 * `users add --roles` with a role of the admin's.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, userFiles } from '../helpers/cluster.ts';
import { startSshd, freePort, LOCAL_USER } from '../helpers/openssh.ts';
import type { Sshd } from '../helpers/openssh.ts';

const c = new TestCluster();
let hostKey: string;
let webPort: number;
let userCaLine: string;
let hostCaLine: string;

before(async () => {
  await c.start();
  const user = await c.admin(['ca', 'export', '--type', 'user']);
  const host = await c.admin(['ca', 'export', '--type', 'host']);
  assert.equal(user.code, 0, user.stderr);
  assert.equal(host.code, 0, host.stderr);
  userCaLine = user.stdout.trim();
  hostCaLine = host.stdout.trim();
  const keys = join(c.work, 'web1-keys');
  mkdirSync(keys);
  hostKey = join(keys, 'ssh_host_ed25519_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'root@web1', '-f', hostKey]);
  webPort = await freePort();
});
after(() => c.stop());

/** What `ssh-keygen -L` says about a certificate file. */
function keygenL(file: string): { type: string; principals: string[]; serial: number; valid: string } {
  const text = execFileSync('ssh-keygen', ['-L', '-f', file], { encoding: 'utf8' });
  const principals = /Principals:\s*\n((?:\s{16,}\S+\n)+)/.exec(text)?.[1].trim().split(/\s+/) ?? [];
  return {
    type: /Type: (.+)/.exec(text)?.[1].trim() ?? '',
    principals,
    serial: Number(/Serial: (\d+)/.exec(text)?.[1]),
    valid: /Valid: (.+)/.exec(text)?.[1].trim() ?? '',
  };
}

test('roles add (flags and YAML), ls, and the refusals of bad and built-in roles', async () => {
  const flags = await c.admin(['roles', 'add', 'webdev', '--logins', '{{internal.logins}}', '--node-labels', 'env=dev|staging,team=*']);
  assert.equal(flags.code, 0, flags.stderr);
  assert.match(flags.stdout, /Role webdev saved: logins \{\{internal\.logins\}\} on nodes with env=dev\|staging,team=\*/);
  const file = join(c.work, 'prod-ro.yaml');
  writeFileSync(file, 'name: prod-ro\nlogins: readonly\nnode_labels:\n  env: prod\n');
  const yaml = await c.admin(['roles', 'add', '--file', file]);
  assert.equal(yaml.code, 0, yaml.stderr);

  const ls = await c.admin(['roles', 'ls', '--format', 'json']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.deepEqual(JSON.parse(ls.stdout), [
    { name: 'access', logins: ['{{internal.logins}}'], node_labels: { '*': ['*'] }, builtin: true },
    { name: 'admin', logins: ['{{internal.logins}}'], node_labels: { '*': ['*'] }, join_sessions: [{ roles: ['*'], modes: ['observer', 'peer'] }], builtin: true },
    { name: 'prod-ro', logins: ['readonly'], node_labels: { env: ['prod'] } },
    { name: 'webdev', logins: ['{{internal.logins}}'], node_labels: { env: ['dev', 'staging'], team: ['*'] } },
  ]);
  const text = await c.admin(['roles', 'ls']);
  const lines = text.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^Role\s+Logins\s+Node labels\s+Built in$/);
  assert.match(lines.find((l) => l.startsWith('access')) ?? '', /^access\s+\{\{internal\.logins\}\}\s+\*=\*\s+yes$/);
  assert.match(lines.find((l) => l.startsWith('webdev')) ?? '', /^webdev\s+\{\{internal\.logins\}\}\s+env=dev\|staging,team=\*$/);

  const builtin = await c.admin(['roles', 'add', 'admin', '--logins', 'root', '--node-labels', '*=*']);
  assert.equal(builtin.code, 1);
  assert.match(builtin.stderr, /^error: "admin" is a built-in role and cannot be changed$/m);
  assert.match(builtin.stderr, /^hint: /m);
  const badLogin = await c.admin(['roles', 'add', 'x', '--logins', 'not a login', '--node-labels', 'env=dev']);
  assert.equal(badLogin.code, 1);
  assert.match(badLogin.stderr, /error: invalid login "not a login" in role "x"/);
  const badSyntax = await c.admin(['roles', 'add', 'x', '--logins', 'a', '--node-labels', 'env']);
  assert.equal(badSyntax.code, 2);
  assert.match(badSyntax.stderr, /error: invalid --node-labels part "env"\nhint: Use NAME=VALUE\|VALUE/);
  const missing = await c.admin(['roles', 'add', 'x', '--logins', 'a']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /error: a role needs a name, --logins and --node-labels \(or --file\)/);
  const help = await c.admin(['roles', 'add', '--help']);
  assert.match(help.stdout, /--node-labels 'env=dev\|staging'/, 'the syntax is documented in --help');
});

test('nodes add: host certificate (ssh-keygen -L), user CA and the sshd_config lines; duplicates refused', async () => {
  const out = join(c.work, 'out');
  const add = await c.admin(['nodes', 'add', '--name', 'web1', '--addr', `127.0.0.1:${webPort}`, '--labels', 'env=dev,team=web', '--host-key-file', `${hostKey}.pub`, '--out', out]);
  assert.equal(add.code, 0, add.stderr);
  const certFile = join(out, 'web1-cert.pub');
  const caFile = join(out, 'user_ca.pub');
  assert.ok(add.stdout.includes(`\n  HostCertificate ${certFile}\n`), add.stdout);
  assert.ok(add.stdout.includes(`\n  TrustedUserCAKeys ${caFile}\n`), add.stdout);
  assert.match(add.stdout, /Node web1 registered \(127\.0\.0\.1:\d+, env=dev,team=web\)/);
  assert.match(add.stdout, /valid for 365 days, until \d{4}-/);
  assert.equal(readFileSync(caFile, 'utf8').trim(), userCaLine);

  const l = keygenL(certFile);
  assert.equal(l.type, 'ssh-ed25519-cert-v01@openssh.com host certificate');
  assert.deepEqual(l.principals, ['web1', 'web1.test.example', '127.0.0.1']);
  const [from, to] = l.valid.replace(/^from /, '').split(' to ').map((s) => Date.parse(s));
  assert.ok(Math.abs((to - from) / 86_400_000 - 365) < 0.01, l.valid);

  const dup = await c.admin(['nodes', 'add', '--name', 'web1', '--addr', '127.0.0.1:22', '--host-key-file', `${hostKey}.pub`, '--out', out]);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /^error: node "web1" is already registered$/m);
  assert.match(dup.stderr, /^hint: .*postern nodes update web1/m);
  const privateKey = await c.admin(['nodes', 'add', '--name', 'web3', '--addr', '127.0.0.1:22', '--host-key-file', hostKey, '--out', out]);
  assert.equal(privateKey.code, 1);
  assert.match(privateKey.stderr, /error: the host key must be an OpenSSH public key/);
  assert.ok(!existsSync(join(out, 'web3-cert.pub')));

  // --format json, a host name address, no labels.
  const dbKey = join(c.work, 'db1_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', dbKey]);
  const json = await c.admin(['nodes', 'add', '--name', 'DB1', '--addr', 'DB1.Internal', '--host-key-file', `${dbKey}.pub`, '--out', out, '--format', 'json']);
  assert.equal(json.code, 0, json.stderr);
  const r = JSON.parse(json.stdout) as { node: unknown; hostCertificate: string; certFile: string; userCaFile: string };
  assert.deepEqual(Object.keys(r), ['node', 'hostCertificate', 'certFile', 'userCaFile']);
  assert.deepEqual(r.node, { name: 'db1', addr: 'db1.internal:22', labels: {} });
  assert.equal(r.certFile, join(out, 'db1-cert.pub'));
  assert.equal(r.userCaFile, caFile);
  assert.equal(readFileSync(r.certFile, 'utf8').trim(), r.hostCertificate.trim());
  assert.deepEqual(keygenL(r.certFile).principals, ['db1', 'db1.test.example', 'db1.internal']);
});

test('a real sshd presents the host certificate; ssh trusts it through @cert-authority alone and logs in with the certificate from postern login', async () => {
  // users add --roles with the admin's own role; the login's certificate carries the user's logins.
  const home = await c.user('alice', LOCAL_USER, 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', 'webdev');
  const f = userFiles(home, 'alice');
  assert.deepEqual(keygenL(f.cert).principals, [LOCAL_USER]);
  const sshd: Sshd = await startSshd({
    trustedUserCaKeys: readFileSync(join(c.work, 'out', 'user_ca.pub'), 'utf8'),
    hostKey: { privatePath: hostKey, certPath: join(c.work, 'out', 'web1-cert.pub') },
    port: webPort,
  });
  c.onStop(() => sshd.stop());
  const knownHosts = join(c.work, 'known_hosts_ca');
  writeFileSync(knownHosts, `@cert-authority * ${hostCaLine}\n`);
  const ssh = (extra: string[], kh = knownHosts) => spawnSync('ssh', [
    '-i', f.key, '-o', `CertificateFile=${f.cert}`, '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${kh}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=20',
    '-p', String(webPort), ...extra, `${LOCAL_USER}@127.0.0.1`, 'echo', 'ok-from-web1',
  ], { encoding: 'utf8', timeout: 30_000 });

  const byAddr = ssh([]);
  assert.equal(byAddr.status, 0, `${byAddr.stderr}\n--- sshd ---\n${sshd.log()}`);
  assert.equal(byAddr.stdout.trim(), 'ok-from-web1');
  for (const alias of ['web1', 'web1.test.example']) {
    const r = ssh(['-o', `HostKeyAlias=${alias}`]);
    assert.equal(r.status, 0, `${alias}: ${r.stderr}`);
  }
  // Controls: a name the certificate does not list, and a known_hosts with another CA, are refused.
  const other = ssh(['-o', 'HostKeyAlias=db1']);
  assert.equal(other.status, 255);
  assert.match(other.stderr, /Host key verification failed/);
  const otherCa = join(c.work, 'other_ca');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherCa]);
  const khOther = join(c.work, 'known_hosts_other');
  writeFileSync(khOther, `@cert-authority * ${readFileSync(`${otherCa}.pub`, 'utf8').trim()}\n`);
  const wrongCa = ssh([], khOther);
  assert.equal(wrongCa.status, 255);
  assert.match(wrongCa.stderr, /Host key verification failed/);
});

test('nodes ls, update, renew and rm, with their errors', async () => {
  const ls = await c.admin(['nodes', 'ls', '--format', 'json']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.deepEqual(JSON.parse(ls.stdout), [
    { name: 'db1', addr: 'db1.internal:22', labels: {} },
    { name: 'web1', addr: `127.0.0.1:${webPort}`, labels: { env: 'dev', team: 'web' } },
  ]);
  const text = await c.admin(['nodes', 'ls']);
  assert.match(text.stdout, /^Node\s+Address\s+Labels\n[- ]+\ndb1\s+db1\.internal:22\n/);

  const up = await c.admin(['nodes', 'update', 'web1', '--labels', 'env=staging']);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, /Node web1: env=staging\./);
  const after = JSON.parse((await c.admin(['nodes', 'ls', '--format', 'json'])).stdout) as Array<{ name: string; labels: Record<string, string> }>;
  assert.deepEqual(after.find((n) => n.name === 'web1')?.labels, { env: 'staging' });
  const badLabels = await c.admin(['nodes', 'update', 'web1', '--labels', 'env']);
  assert.equal(badLabels.code, 1);
  assert.match(badLabels.stderr, /error: invalid labels "env": "env" is not NAME=VALUE/);

  const before = keygenL(join(c.work, 'out', 'web1-cert.pub'));
  const renewDir = join(c.work, 'renewed');
  const renew = await c.admin(['nodes', 'renew', 'web1', '--out', renewDir]);
  assert.equal(renew.code, 0, renew.stderr);
  assert.ok(renew.stdout.includes(`HostCertificate ${join(renewDir, 'web1-cert.pub')}`));
  const renewed = keygenL(join(renewDir, 'web1-cert.pub'));
  assert.ok(renewed.serial > before.serial, `serial ${renewed.serial} after ${before.serial}`);
  assert.deepEqual(renewed.principals, before.principals);
  assert.equal(
    readFileSync(join(renewDir, 'web1-cert.pub'), 'utf8').split(' ')[0],
    'ssh-ed25519-cert-v01@openssh.com',
  );

  const rm = await c.admin(['nodes', 'rm', 'db1']);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stdout, /Node db1 removed/);
  assert.deepEqual((JSON.parse((await c.admin(['nodes', 'ls', '--format', 'json'])).stdout) as Array<{ name: string }>).map((n) => n.name), ['web1']);
  for (const args of [['nodes', 'rm', 'db1'], ['nodes', 'renew', 'db1'], ['nodes', 'update', 'db1', '--labels', 'env=x']]) {
    const r = await c.admin(args);
    assert.equal(r.code, 1, args.join(' '));
    assert.equal(r.stderr, 'error: node "db1" is not registered\nhint: List nodes with:  postern nodes ls\n');
  }
});

test('roles rm: refused while a user holds the role (named), then removed; users add refuses an unknown role', async () => {
  const held = await c.admin(['roles', 'rm', 'webdev']);
  assert.equal(held.code, 1);
  assert.match(held.stderr, /^error: role "webdev" is still held by alice$/m);
  const rm = await c.admin(['roles', 'rm', 'prod-ro']);
  assert.equal(rm.code, 0, rm.stderr);
  const names = (JSON.parse((await c.admin(['roles', 'ls', '--format', 'json'])).stdout) as Array<{ name: string }>).map((r) => r.name);
  assert.deepEqual(names, ['access', 'admin', 'webdev']);
  const builtin = await c.admin(['roles', 'rm', 'access']);
  assert.equal(builtin.code, 1);
  assert.match(builtin.stderr, /error: "access" is a built-in role and cannot be removed/);
  const unknown = await c.admin(['users', 'add', 'zed', '--logins', 'zed', '--roles', 'prod-ro']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /^error: unknown role "prod-ro"\nhint: List roles with:  postern roles ls$/m);
});

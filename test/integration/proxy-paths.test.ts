/**
 * OpenSSH's own `ssh -J` through the proxy's listener,
 * 256 MiB intact through all three paths (ProxyCommand, -J, postern ssh), and every refusal
 * with its message and without the proxy dialling anything.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, writeFileSync, readFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { TestCluster, userFiles } from '../helpers/cluster.ts';
import { runPostern, POSTERN_BIN } from '../helpers/cli.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { parsePrivateKeyOpenSSH, parseAuthorizedKey, formatAuthorizedKey } from '../../src/ssh/keys.ts';
import { signCertificate, formatCertificate } from '../../src/ssh/certs.ts';

const c = new TestCluster();
let alice: string;
let pat: string;
let sshConfig: string;
/** Connections that reached listeners standing in for nodes the proxy must never dial. */
const dialled: string[] = [];
const traps: Server[] = [];

async function trap(name: string, port: number): Promise<void> {
  const s = createServer((sock) => { dialled.push(name); sock.destroy(); });
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', () => r()));
  traps.push(s);
}

/** An ssh_config for OpenSSH: the jump hop and the node hop both use alice's key and certificate. */
function writeSshConfig(home: string, user: string, name: string): string {
  const f = userFiles(home, user);
  const path = join(c.work, `ssh_config_${name}`);
  writeFileSync(path, [
    'Host *',
    `  IdentityFile ${f.key}`, `  CertificateFile ${f.cert}`, '  IdentitiesOnly yes', '  IdentityAgent none',
    `  UserKnownHostsFile ${f.knownHosts}`, '  StrictHostKeyChecking yes', '  BatchMode yes',
    '  ConnectTimeout 20', '',
  ].join('\n'));
  return path;
}

function jump(config: string, jumpUser: string, dest: string, cmd: string[], input?: string) {
  return spawnSync('ssh', ['-F', config, '-J', `${jumpUser}@127.0.0.1:${c.sshPort}`, dest, ...cmd], { encoding: 'utf8', timeout: 120_000, input });
}

before(async () => {
  await c.start('allow_unregistered: ["127.0.0.3"]');
  const role = join(c.work, 'prod-only.yaml');
  writeFileSync(role, 'name: prod-only\nlogins: ["{{internal.logins}}"]\nnode_labels:\n  env: [prod]\n');
  const added = await c.admin(['roles', 'add', '--file', role]);
  assert.equal(added.code, 0, added.stderr);
  alice = await c.user('alice', LOCAL_USER, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  pat = await c.user('pat', LOCAL_USER, 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ', 'prod-only');
  await c.node('web1', 'env=prod');
  await c.node('web2', 'env=prod,team=web');
  const db1 = await c.node('db1', 'env=dev', { start: false });
  await trap('db1', db1.port);
  sshConfig = writeSshConfig(alice, 'alice', 'alice');
});

after(async () => {
  for (const t of traps) t.close();
  await c.stop();
});

test('ssh -J <user>@proxy <login>@web1 works through the proxy listener, with strict host key checking', () => {
  const r = jump(sshConfig, 'alice', `${LOCAL_USER}@web1`, ['echo', 'ok-web1']);
  assert.equal(r.status, 0, r.stderr + c.serve.stderr().slice(-2000));
  assert.equal(r.stdout.trim(), 'ok-web1');
  const fq = jump(sshConfig, LOCAL_USER, `${LOCAL_USER}@web2.test.example`, ['echo', 'ok-web2']);
  assert.equal(fq.status, 0, fq.stderr);
  assert.equal(fq.stdout.trim(), 'ok-web2');
});

test('256 MiB arrive intact through ProxyCommand, ssh -J and postern ssh (sha256 compared)', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'postern-bulk-')), 'data');
  const fd = openSync(file, 'w');
  const hash = createHash('sha256');
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < 256; i++) {
    for (let j = 0; j < chunk.length; j += 4) chunk.writeUInt32LE((i * 2654435761 + j * 40503) >>> 0, j);
    writeSync(fd, chunk);
    hash.update(chunk);
  }
  closeSync(fd);
  const want = hash.digest('hex');

  const cfg = await runPostern(['config'], { env: { TSH_HOME: alice } });
  assert.equal(cfg.code, 0, cfg.stderr);
  const proxyCommandConfig = join(c.work, 'ssh_config_postern');
  writeFileSync(proxyCommandConfig, cfg.stdout + '\nHost *\n  BatchMode yes\n');

  const run = (cmd: string, args: string[], env: Record<string, string | undefined> = process.env): Promise<{ code: number | null; out: string; err: string }> =>
    new Promise((resolve) => {
      const p = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = ''; let err = '';
      p.stdout.on('data', (d) => { out += d; });
      p.stderr.on('data', (d) => { err += d; });
      createReadStream(file).pipe(p.stdin);
      p.on('close', (code) => resolve({ code, out, err }));
    });
  const paths: Array<[string, string, string[], Record<string, string | undefined>?]> = [
    // The ProxyCommand finds the login through TSH_HOME, as it would for a user who exports it.
    ['ProxyCommand', 'ssh', ['-F', proxyCommandConfig, `${LOCAL_USER}@web1.test.example`, 'sha256sum'], { ...process.env, TSH_HOME: alice }],
    ['ssh -J', 'ssh', ['-F', sshConfig, '-J', `alice@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web1`, 'sha256sum']],
    ['postern ssh', process.execPath, [POSTERN_BIN, 'ssh', `${LOCAL_USER}@web1`, 'sha256sum'], { ...process.env, TSH_HOME: alice, POSTERN_FROM_SOURCE: '1' }],
  ];
  for (const [name, cmd, args, env] of paths) {
    const r = await run(cmd, args, env);
    assert.equal(r.code, 0, `${name}: ${r.err}`);
    assert.equal(r.out.split(/\s/)[0], want, `${name} delivered other bytes`);
  }
});

test('refused before any dial: a node the role does not allow, an unknown node, an unregistered host', async () => {
  const patConfig = writeSshConfig(pat, 'pat', 'pat');
  const denied = jump(patConfig, 'pat', `${LOCAL_USER}@db1`, ['true']);
  assert.equal(denied.status, 255);
  assert.match(denied.stderr, /administratively prohibited: access to node "db1" denied/);
  const viaProxyCommand = await runPostern(['proxy', 'ssh', `${LOCAL_USER}@db1:22`], { env: { TSH_HOME: pat } });
  assert.equal(viaProxyCommand.code, 255);
  assert.match(viaProxyCommand.stderr, /access to node "db1" denied/);
  assert.equal(viaProxyCommand.stdout, '', 'stdout carries only the SSH stream');

  const unknown = jump(sshConfig, 'alice', `${LOCAL_USER}@web9`, ['true']);
  assert.equal(unknown.status, 255);
  assert.match(unknown.stderr, /administratively prohibited: .*web9/);

  // 127.0.0.2 is not registered and not in allow_unregistered (only 127.0.0.3 is).
  const port = c.nodes.get('db1')!.port;
  await trap('unregistered', 0);
  const outside = jump(sshConfig, 'alice', `${LOCAL_USER}@127.0.0.2`, ['true']);
  assert.equal(outside.status, 255);
  assert.match(outside.stderr, /administratively prohibited: .*127\.0\.0\.2/);
  assert.deepEqual(dialled, [], `the proxy dialled ${dialled.join(', ')} (db1 trap on port ${port})`);
  const audit = readAudit();
  assert.ok(audit.some((e) => e.type === 'access.denied' && e.user === 'pat' && String(e.target).includes('db1')), 'a denial is an audit event');
});

test('refused at the proxy: a plain key, another CA, an expired certificate, a login not in the certificate', async () => {
  const f = userFiles(alice, 'alice');
  const base = ['-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', `UserKnownHostsFile=${f.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-p', String(c.sshPort)];
  const plain = spawnSync('ssh', [...base, '-i', f.key, '-o', 'CertificateFile=/dev/null', `alice@127.0.0.1`, '-s', 'proxy:web1:22'], { encoding: 'utf8', timeout: 90_000 });
  assert.equal(plain.status, 255);
  assert.match(plain.stderr, /Permission denied \(publickey\)/);

  const dir = mkdtempSync(join(tmpdir(), 'postern-otherca-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'ca')]);
  execFileSync('cp', [f.key, join(dir, 'id')]);
  execFileSync('chmod', ['600', join(dir, 'id')]);
  writeFileSync(join(dir, 'id.pub'), readFileSync(`${f.key}.pub`));
  execFileSync('ssh-keygen', ['-q', '-s', join(dir, 'ca'), '-I', 'alice', '-n', `${LOCAL_USER},alice`, '-V', '+1h', join(dir, 'id.pub')]);
  const other = spawnSync('ssh', [...base, '-i', join(dir, 'id'), '-o', `CertificateFile=${join(dir, 'id-cert.pub')}`, 'alice@127.0.0.1', '-s', 'proxy:web1:22'], { encoding: 'utf8', timeout: 90_000 });
  assert.equal(other.status, 255);
  assert.match(other.stderr, /Permission denied \(publickey\)/);

  // An expired certificate from the real user CA (read from auth's storage, as its admin could).
  const db = new DatabaseSync(join(c.serve.dataDir, 'postern.db'), { readOnly: true });
  const ca = JSON.parse((db.prepare("SELECT value FROM items WHERE key = 'cas/ssh/user'").get() as { value: string }).value) as { privateKey: string };
  db.close();
  const subject = parseAuthorizedKey(readFileSync(`${f.key}.pub`, 'utf8'));
  const expired = signCertificate(parsePrivateKeyOpenSSH(ca.privateKey), {
    type: 'user', subjectPublicKey: subject.wire, keyId: 'alice', principals: [LOCAL_USER], ttlMs: 60_000, now: new Date(Date.now() - 3_600_000), serial: 99n,
  });
  writeFileSync(join(dir, 'expired-cert.pub'), formatCertificate(expired) + '\n');
  const old = spawnSync('ssh', [...base, '-i', f.key, '-o', `CertificateFile=${join(dir, 'expired-cert.pub')}`, 'alice@127.0.0.1', '-s', 'proxy:web1:22'], { encoding: 'utf8', timeout: 90_000 });
  assert.equal(old.status, 255);
  assert.match(old.stderr, /Permission denied \(publickey\)/);
  void formatAuthorizedKey;

  // The jump user must be the certificate's user or one of its logins.
  const notMine = jump(sshConfig, 'root-not-in-cert', `${LOCAL_USER}@web1`, ['true']);
  assert.equal(notMine.status, 255);
  assert.match(notMine.stderr, /Permission denied \(publickey\)/);
  const pc = await runPostern(['proxy', 'ssh', 'root-not-in-cert@web1:22'], { env: { TSH_HOME: alice } });
  assert.equal(pc.code, 255);
  assert.match(pc.stderr, /root-not-in-cert/);
  assert.deepEqual(dialled, []);
  assert.match(c.serve.stderr(), /refused a plain key/);
});

test('a node that is down gives an error naming the node, not a hang', async () => {
  await c.node('down1', 'env=prod', { start: false });
  const t0 = Date.now();
  const r = jump(sshConfig, 'alice', `${LOCAL_USER}@down1`, ['true']);
  assert.equal(r.status, 255);
  assert.match(r.stderr, /open failed: connect failed: cannot reach node "down1" at 127\.0\.0\.1:\d+: connection refused/);
  assert.ok(Date.now() - t0 < 15_000);
});

function readAudit(): Array<Record<string, unknown>> {
  const db = new DatabaseSync(join(c.serve.dataDir, 'postern.db'), { readOnly: true });
  try {
    return (db.prepare("SELECT value FROM items WHERE key LIKE 'audit/%' ORDER BY key").all() as Array<{ value: string }>).map((r) => JSON.parse(r.value));
  } finally {
    db.close();
  }
}

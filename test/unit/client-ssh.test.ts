/**
 * `postern ssh` without a network: -L/-R specs, destinations and selectors, the node host
 * key check, line prefixing, argument order (command words are never options), usage errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseForwardSpec } from '../../src/client/port-forward.ts';
import {
  acceptedHostNames, checkNodeHostKey, hostCaKeysFromKnownHosts, parseDestination,
} from '../../src/client/ssh-client.ts';
import { LinePrefixer, exitCodeOf, nodePrefix } from '../../src/client/ssh-session.ts';
import { passThroughAfterDestination, planSsh } from '../../src/cli/commands/ssh.ts';
import { chooseLogin } from '../../src/client/node-access.ts';
import { isSelector } from '../../src/api/labels.ts';
import type { SshRequest } from '../../src/cli/commands/ssh.ts';
import { signCertificate } from '../../src/ssh/certs.ts';
import type { CertificateRequest } from '../../src/ssh/certs.ts';
import { formatAuthorizedKey, generateKeyPair } from '../../src/ssh/keys.ts';
import { formatCertAuthorityLine, formatKnownHostLine } from '../../src/ssh/known-hosts.ts';
import { UsageError } from '../../src/core/errors.ts';
import { runMain } from '../helpers/cli.ts';

test('-L/-R specs: three or four fields, brackets for IPv6, * and empty bind mean every interface', () => {
  assert.deepEqual(parseForwardSpec('8080:localhost:80', 'L'), { kind: 'L', bindPort: 8080, host: 'localhost', hostPort: 80, text: '8080:localhost:80' });
  assert.deepEqual(parseForwardSpec('127.0.0.2:8080:db.internal:5432', 'L'),
    { kind: 'L', bindHost: '127.0.0.2', bindPort: 8080, host: 'db.internal', hostPort: 5432, text: '127.0.0.2:8080:db.internal:5432' });
  const v6 = parseForwardSpec('[::1]:0:[fe80::1]:22', 'R');
  assert.equal(v6.bindHost, '::1');
  assert.equal(v6.bindPort, 0, 'port 0: the listening side chooses');
  assert.equal(v6.host, 'fe80::1');
  assert.equal(v6.hostPort, 22);
  assert.equal(parseForwardSpec('*:8080:h:80', 'L').bindHost, '0.0.0.0');
  assert.equal(parseForwardSpec(':8080:h:80', 'L').bindHost, '0.0.0.0');
  assert.equal(parseForwardSpec('*:8080:h:80', 'R').bindHost, '', 'an empty bind address asks sshd for every interface');
  assert.equal(parseForwardSpec('8080:h:80', 'R').bindHost, undefined, 'default: loopback on the node');
});

test('-L/-R specs that are wrong are usage errors (exit 2) that say what is wrong', () => {
  const cases: Array<[string, RegExp]> = [
    ['8080', /three or four fields/],
    ['8080:h', /three or four fields/],
    ['a:b:c:d:e', /three or four fields/],
    ['x:h:80', /"x" is not a port/],
    ['70000:h:80', /"70000" is not a port/],
    ['8080:h:0', /"0" is not a port \(1-65535\)/],
    ['8080:h:', /"" is not a port/],
    ['8080::80', /"" is not a host/],
    ['8080:h st:80', /is not a host/],
    ['[::1:8080:h:80', /three or four fields/],
    ['b@d:8080:h:80', /is not a bind address/],
  ];
  for (const [spec, why] of cases) {
    assert.throws(() => parseForwardSpec(spec, 'L'), (err: unknown) => {
      assert.ok(err instanceof UsageError, spec);
      assert.equal(err.exitCode, 2);
      assert.match(err.message, new RegExp(`^invalid -L "${spec.replace(/[[\]()*+?.^$|\\]/g, '\\$&')}"`));
      assert.match(err.message, why, spec);
      assert.match(err.hint ?? '', /-L \[bind_address:\]port:host:hostport/);
      return true;
    });
  }
  assert.throws(() => parseForwardSpec('1', 'R'), /^UsageError: invalid -R "1"/);
});

test('destinations: USER@TARGET split at the last @; selectors are targets with "="', () => {
  assert.deepEqual(parseDestination('web1'), { target: 'web1' });
  assert.deepEqual(parseDestination('root@web1.test.example'), { user: 'root', target: 'web1.test.example' });
  assert.deepEqual(parseDestination('a@b@env=prod'), { user: 'a@b', target: 'env=prod' });
  assert.throws(() => parseDestination('@web1'), UsageError);
  assert.throws(() => parseDestination('root@'), UsageError);
  assert.throws(() => parseDestination('web 1'), UsageError);
  assert.equal(isSelector('env=prod'), true);
  assert.equal(isSelector('env=prod,team=db'), true);
  assert.equal(isSelector('web1'), false);
  assert.equal(isSelector('web1.test.example'), false);
  const plan = (destination: string): ReturnType<typeof planSsh> => planSsh({ destination, command: ['true'] });
  assert.deepEqual(plan('env=prod,team=db').selector, { env: 'prod', team: 'db' });
  // A malformed selector is a usage error of `postern ssh` (exit 2); the grammar's own table is in api-labels.test.ts.
  for (const bad of ['=prod', 'env=', 'env=prod,', 'env=a=b', 'env=a,env=b']) assert.throws(() => plan(bad), UsageError, bad);
});

const caPair = generateKeyPair();
const otherCa = generateKeyPair();
const hostPair = generateKeyPair();
function hostCert(over: Partial<CertificateRequest> = {}, ca = caPair): Buffer {
  return signCertificate(ca, {
    type: 'host', subjectPublicKey: hostPair.publicWire, keyId: 'node web1', principals: ['web1', 'web1.test.example', '127.0.0.1'],
    ttlMs: 3600_000, serial: 1n, ...over,
  }).raw;
}

test('node host keys: only a host certificate of the host CA, valid now, naming the target', () => {
  const now = new Date();
  const trust = { hostCaKeys: [caPair.publicWire], names: acceptedHostNames('web1', 'test.example'), now };
  assert.deepEqual(trust.names, ['web1', 'web1.test.example']);
  assert.deepEqual(acceptedHostNames('web1.test.example', 'test.example'), ['web1.test.example']);
  assert.equal(checkNodeHostKey(hostCert(), trust), undefined);
  assert.equal(checkNodeHostKey(hostCert({ principals: ['web1.test.example'] }), trust), undefined, 'NAME.<cluster> is enough');

  assert.match(checkNodeHostKey(hostPair.publicWire, trust)!, /plain host key \(ssh-ed25519 SHA256:[^)]+\) and no host certificate/);
  assert.match(checkNodeHostKey(hostCert({}, otherCa), trust)!, /not valid: certificate is signed by an unknown ca/);
  assert.match(checkNodeHostKey(hostCert({ type: 'user' }), trust)!, /not valid: certificate is a user certificate, not a host certificate/);
  assert.match(checkNodeHostKey(hostCert({ now: new Date(Date.now() - 7200_000) }), trust)!, /not valid: certificate expired at/);
  assert.match(checkNodeHostKey(hostCert({ now: new Date(Date.now() + 7200_000) }), trust)!, /not valid: certificate is not valid before/);
  assert.match(checkNodeHostKey(hostCert({ principals: ['web2', 'web2.test.example'] }), trust)!,
    /is for web2, web2\.test\.example, not for "web1" or "web1\.test\.example"/);
  assert.match(checkNodeHostKey(hostCert(), { ...trust, hostCaKeys: [] })!, /no host CA of the cluster is in known_hosts/);
  assert.match(checkNodeHostKey(Buffer.from('junk'), trust)!, /cannot be read/);
  // A selector's node is checked against the name the proxy resolved, not the selector.
  assert.match(checkNodeHostKey(hostCert(), { ...trust, names: acceptedHostNames('env=prod', 'test.example') })!, /not for "env=prod"/);
});

test('host CA keys come from the @cert-authority lines of known_hosts, not from plain host lines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-kh-'));
  try {
    const path = join(dir, 'known_hosts');
    writeFileSync(path, [
      '# comment',
      formatCertAuthorityLine(['*'], caPair.publicWire, 'postern host CA, cluster=test.example'),
      formatKnownHostLine('127.0.0.1', 3023, otherCa.publicWire),
      '@cert-authority * ssh-ed25519 not-base64!',
      '',
    ].join('\n'));
    const keys = hostCaKeysFromKnownHosts(path);
    assert.equal(keys.length, 1);
    assert.ok(keys[0].equals(caPair.publicWire));
    assert.deepEqual(hostCaKeysFromKnownHosts(join(dir, 'missing')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('line prefixing: whole lines only, chunks joined, stdout and stderr apart, a last partial line ended', () => {
  const written: string[] = [];
  const p = new LinePrefixer(nodePrefix('web1'), (b) => written.push(b.toString()));
  p.push('hel');
  p.push('lo\nwor');
  assert.deepEqual(written, ['[web1] hello\n'], 'nothing of "wor" until its line ends');
  p.push(Buffer.from('ld\nsecond\nthird'));
  assert.deepEqual(written, ['[web1] hello\n', '[web1] world\n', '[web1] second\n']);
  p.flush();
  assert.deepEqual(written.at(-1), '[web1] third\n');
  p.flush();
  assert.equal(written.length, 4, 'flush with nothing pending writes nothing');

  // A multi-byte character split across chunks stays whole.
  const utf: Buffer[] = [];
  const q = new LinePrefixer('[n] ', (b) => utf.push(b));
  const euro = Buffer.from('€\n');
  q.push(euro.subarray(0, 1));
  q.push(euro.subarray(1));
  assert.equal(Buffer.concat(utf).toString(), '[n] €\n');

  // An endless line is written in bounded pieces.
  const big: string[] = [];
  const r = new LinePrefixer('[n] ', (b) => big.push(b.toString()));
  r.push('x'.repeat(LinePrefixer.MAX_LINE + 10));
  assert.equal(big.length, 1);
  assert.ok(big[0].startsWith('[n] xxx') && big[0].endsWith('x\n'));

  assert.equal(nodePrefix('we\u001b[31mb'), '[we\\x1b[31mb] ', 'a node name from the server is escaped');
});

test('exit codes as OpenSSH: the remote status, else 255 (connection lost, killed by a signal)', () => {
  assert.equal(exitCodeOf({ code: 0 }), 0);
  assert.equal(exitCodeOf({ code: 3 }), 3);
  assert.equal(exitCodeOf({ signal: 'KILL' }), 255);
  assert.equal(exitCodeOf({}), 255);
});

test('the command after the destination is never read as options', () => {
  const values = new Map<string, boolean>([['-l', true], ['--login', true], ['-p', true], ['-L', true], ['-R', true], ['-A', false], ['-N', false], ['-t', false], ['-T', false]]);
  const takesValue = (f: string): boolean | undefined => values.get(f);
  assert.deepEqual(passThroughAfterDestination(['web1', 'ls', '-l'], takesValue), ['web1', '--', 'ls', '-l']);
  assert.deepEqual(passThroughAfterDestination(['-l', 'root', '-A', 'web1', 'ls', '-l'], takesValue), ['-l', 'root', '-A', 'web1', '--', 'ls', '-l']);
  assert.deepEqual(passThroughAfterDestination(['-Al', 'root', 'web1', 'x'], takesValue), ['-Al', 'root', 'web1', '--', 'x']);
  assert.deepEqual(passThroughAfterDestination(['-lroot', 'web1', 'x'], takesValue), ['-lroot', 'web1', '--', 'x']);
  assert.deepEqual(passThroughAfterDestination(['--login=root', 'web1', 'x'], takesValue), ['--login=root', 'web1', '--', 'x']);
  assert.deepEqual(passThroughAfterDestination(['--login', 'root', 'web1'], takesValue), ['--login', 'root', 'web1', '--']);
  assert.deepEqual(passThroughAfterDestination(['-A', 'web1', '--', 'ls'], takesValue), ['-A', 'web1', '--', 'ls'], 'no second --');
  assert.deepEqual(passThroughAfterDestination(['-A', '--', 'web1', 'ls'], takesValue), ['-A', '--', 'web1', 'ls']);
  assert.deepEqual(passThroughAfterDestination(['-A', '-N'], takesValue), ['-A', '-N']);
});

function req(over: Partial<SshRequest>): SshRequest {
  return { destination: 'web1', command: [], ...over };
}

test('usage errors: -t with -T, -N with a command, a selector without a command or with forwards', () => {
  assert.throws(() => planSsh(req({ t: true, T: true })), /-t and -T cannot be used together/);
  assert.throws(() => planSsh(req({ N: true, command: ['ls'] })), /-N runs no command/);
  assert.throws(() => planSsh(req({ destination: 'root@env=prod' })), /needs a command to run on every matching node/);
  assert.throws(() => planSsh(req({ destination: 'env=prod', command: ['x'], localForward: ['1:h:2'] })), /need a single node/);
  const plan = planSsh(req({ destination: 'root@env=prod,team=db', command: ['uname', '-a'] }));
  assert.deepEqual(plan.selector, { env: 'prod', team: 'db' });
  assert.equal(plan.command, 'uname -a', 'words joined with spaces, as ssh does');
  assert.equal(plan.user, 'root');
  assert.equal(plan.port, 22, 'port 22 unless -p: the proxy dials the registered port');
  assert.equal(planSsh(req({ port: 2222 })).port, 2222);
  assert.equal(planSsh(req({ t: true })).pty, 'yes');
  assert.equal(planSsh(req({ T: true })).pty, 'no');
});

test('the login: -l, then USER@, then the local user when the certificate allows it, then its first login', () => {
  assert.equal(chooseLogin({ user: 'a' }, 'b', ['a', 'b'], {}), 'b');
  assert.equal(chooseLogin({ user: 'a' }, undefined, ['b'], {}), 'a');
  assert.equal(chooseLogin({}, undefined, ['ubuntu', 'me'], { USER: 'me' }), 'me');
  assert.equal(chooseLogin({}, undefined, ['ubuntu', 'root'], { USER: 'me' }), 'ubuntu');
});

test('CLI: arguments reach the command the way ssh reads them; usage errors exit 2, no login exits 4', async () => {
  const home = mkdtempSync(join(tmpdir(), 'postern-ssh-home-'));
  try {
    const env = { TSH_HOME: join(home, '.tsh') };
    // "-l" after the destination belongs to the command: no "argument missing" usage error.
    const notLoggedIn = await runMain(['ssh', 'web1', 'ls', '-l'], { env });
    assert.equal(notLoggedIn.code, 4, notLoggedIn.stderr);
    assert.match(notLoggedIn.stderr, /^error: not logged in\nhint: Log in with:  postern login/);
    const withOptions = await runMain(['ssh', '-A', '-l', 'root', 'web1', 'ls', '-l', '-p'], { env });
    assert.equal(withOptions.code, 4, withOptions.stderr);
    // The program's own -v/--version/-h after `ssh` belong to the remote command too.
    for (const word of ['-v', '--version', '-h', '--help']) {
      const r = await runMain(['ssh', 'web1', 'uname', word], { env });
      assert.equal(r.code, 4, `${word}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, '', `${word} printed nothing of postern's own`);
    }
    // Before `ssh`, they are still the program's.
    const version = await runMain(['-v', 'ssh', 'web1'], { env });
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
    const help = await runMain(['ssh', '--help'], { env });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: postern ssh \[options\] \[USER@\]TARGET \[COMMAND\.\.\.\]/);
    for (const [argv, why] of [
      [['ssh', '-t', '-T', 'web1'], /-t and -T cannot be used together/],
      [['ssh', '-N', 'web1', 'ls'], /-N runs no command/],
      [['ssh', '-L', '8080:h', 'web1'], /invalid -L "8080:h"/],
      [['ssh', '-R', '8080:h:0', 'web1'], /invalid -R "8080:h:0"/],
      [['ssh', '-p', '0', 'web1'], /invalid -p "0"/],
      [['ssh', 'env=prod'], /needs a command/],
      [['ssh'], /missing required argument 'destination'/],
      [['ssh', '-X', 'web1'], /unknown option '-X'/],
    ] as const) {
      const r = await runMain([...argv], { env });
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, why);
    }
    // An expired certificate is "not logged in" too: exit 4 with the login hint.
    const keyDir = join(home, '.tsh', 'keys', 'proxy.test');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(keyDir, 'alice-ssh'), { recursive: true });
    const user = generateKeyPair();
    const { encodePrivateKeyOpenSSH } = await import('../../src/ssh/keys.ts');
    writeFileSync(join(keyDir, 'alice'), encodePrivateKeyOpenSSH(user), { mode: 0o600 });
    writeFileSync(join(keyDir, 'alice.pub'), formatAuthorizedKey(user.publicWire) + '\n');
    const expired = signCertificate(caPair, { type: 'user', subjectPublicKey: user.publicWire, keyId: 'alice', principals: ['root'], ttlMs: 1000, serial: 2n, now: new Date(Date.now() - 3600_000) });
    const { formatCertificate } = await import('../../src/ssh/certs.ts');
    writeFileSync(join(keyDir, 'alice-ssh', 'test.example-cert.pub'), formatCertificate(expired) + '\n');
    writeFileSync(join(home, '.tsh', 'proxy.test.yaml'), 'webProxyAddr: proxy.test:3080\nsshProxyAddr: proxy.test:3023\nproxyHost: proxy.test\ncluster: test.example\nuser: alice\nlogins: [root]\n');
    writeFileSync(join(home, '.tsh', 'current-profile'), 'proxy.test\n');
    const exp = await runMain(['ssh', 'root@web1', 'true'], { env });
    assert.equal(exp.code, 4, exp.stderr);
    assert.match(exp.stderr, /error: the certificate of alice for proxy\.test expired at/);
    assert.match(exp.stderr, /hint: Log in again with:  postern login/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

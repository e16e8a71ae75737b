/**
 * OpenSSH's own clients through Postern, in one mode: ssh (ProxyCommand and -J) with its
 * exit status, `postern ssh` refused fast (255), scp (-O legacy and SFTP) both ways, sftp,
 * rsync, git clone from a bare repository on the node, ControlMaster (two commands over one
 * master), gpg-agent as the SSH agent, `login --add-keys-to-agent yes` into ssh-agent and
 * gpg-agent (default mode), and -L/-R/-D. Each checks the data (sha256), the exit status
 * and the audit event.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POSTERN_BIN, runPostern } from '../helpers/cli.ts';
import { TEST_PASSWORD } from '../helpers/cluster.ts';
import { run, sha256, until, echoThrough, socksEcho, freePort, LOCAL_USER } from './harness.ts';
import type { Interop, Mode } from './harness.ts';

/** Registers, on a started cluster, the OpenSSH tests against one cluster in `mode`. */
export function opensshSuite(it: Interop): void {
  const mode: Mode = it.mode;
  // scp and sftp turn agent forwarding off whatever the config says; -A turns it back on,
  // which recording mode needs (the proxy logs in to the node through the agent).
  const agentFlag = mode === 'recording' ? ['-A'] : [];

  test(`${mode}: ssh through the ProxyCommand and -J: output, exit status 3, audit event`, async () => {
    const pc = await it.ssh([it.viaProxyCommand, 'echo pc-$((6*7)); exit 3']);
    assert.equal(pc.status, 3, pc.stderr + it.tail());
    assert.equal(pc.stdout.trim(), 'pc-42');
    const j = await it.ssh([...it.jump, `${LOCAL_USER}@web1`, 'echo j-$((7*7)); exit 3']);
    assert.equal(j.status, 3, j.stderr + it.tail());
    assert.equal(j.stdout.trim(), 'j-49');
    await it.expectNodeEvents(2);
  });

  test(`${mode}: postern ssh to an unknown node exits 255 at once, with the reason`, async () => {
    const t0 = Date.now();
    const r = await run(process.execPath, [POSTERN_BIN, 'ssh', ...(mode === 'recording' ? ['-A'] : []), `${LOCAL_USER}@no-such-node`, 'true'],
      { env: it.env({ TSH_HOME: it.alice, POSTERN_FROM_SOURCE: '1' }), timeoutMs: 30_000 });
    assert.equal(r.status, 255, `status ${r.status} signal ${r.signal}: ${r.stderr}`);
    assert.match(r.stderr, /no-such-node/);
    assert.ok(Date.now() - t0 < 8_000, `took ${Date.now() - t0} ms: ${r.stderr}`);
  });

  test(`${mode}: postern ssh as a user who was removed exits 255 at once, with the reason`, async () => {
    // A user of this mode's own, removed after logging in: their certificate is still
    // unexpired, but auth refuses the account (checkAccount), and the proxy says why.
    const gone = `gone-${mode}`;
    const home = await it.c.user(gone, LOCAL_USER, 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
    const rm = await it.c.admin(['users', 'rm', gone]);
    assert.equal(rm.code, 0, rm.stderr);
    for (const cmd of [['true'], []]) {
      const t0 = Date.now();
      const r = await run(process.execPath, [POSTERN_BIN, 'ssh', ...(mode === 'recording' ? ['-A'] : []), `${LOCAL_USER}@web1`, ...cmd],
        { env: it.env({ TSH_HOME: home, POSTERN_FROM_SOURCE: '1' }), timeoutMs: 30_000 });
      assert.equal(r.status, 255, `status ${r.status} signal ${r.signal}: ${r.stderr}`);
      assert.match(r.stderr, /^error: .*\S/m, r.stderr);
      assert.match(r.stderr, new RegExp(gone), r.stderr);
      assert.equal(r.stdout, '');
      assert.ok(Date.now() - t0 < 8_000, `took ${Date.now() - t0} ms: ${r.stderr}`);
    }
  });

  test(`${mode}: scp -O (legacy) and scp over SFTP, both ways, sha256 intact`, async () => {
    for (const proto of ['-O', '-s']) {
      const up = join(it.c.work, `scp-up${proto}.bin`);
      const down = join(it.c.work, `scp-down${proto}.bin`);
      const u = await run('scp', ['-q', '-F', it.sshConfig, ...agentFlag, proto, it.file, `${it.viaProxyCommand}:${up}`], { env: it.env() });
      assert.equal(u.status, 0, `${proto} up: ${u.stderr}${it.tail()}`);
      assert.equal(sha256(up), it.fileSum);
      const d = await run('scp', ['-q', '-F', it.sshConfig, ...agentFlag, proto, ...it.jump, `${LOCAL_USER}@web1:${up}`, down], { env: it.env() });
      assert.equal(d.status, 0, `${proto} down: ${d.stderr}${it.tail()}`);
      assert.equal(sha256(down), it.fileSum);
    }
    await it.expectNodeEvents(4);
  });

  test(`${mode}: sftp batch put and get`, async () => {
    const up = join(it.c.work, 'sftp-up.bin');
    const down = join(it.c.work, 'sftp-down.bin');
    const r = await run('sftp', ['-q', '-F', it.sshConfig, ...agentFlag, '-b', '-', it.viaProxyCommand], { env: it.env(), input: `put ${it.file} ${up}\nget ${up} ${down}\n` });
    assert.equal(r.status, 0, r.stderr + it.tail());
    assert.equal(sha256(up), it.fileSum);
    assert.equal(sha256(down), it.fileSum);
    await it.expectNodeEvents();
  });

  test(`${mode}: rsync over ssh`, async () => {
    const dest = join(it.c.work, 'rsync-dest');
    const r = await run('rsync', ['-a', '-e', `ssh -F ${it.sshConfig}`, it.file, `${it.viaProxyCommand}:${dest}/`], { env: it.env() });
    assert.equal(r.status, 0, r.stderr + it.tail());
    assert.equal(sha256(join(dest, 'payload.bin')), it.fileSum);
    await it.expectNodeEvents();
  });

  test(`${mode}: git clone over ssh from a bare repository on the node`, async () => {
    const dest = join(it.c.work, `clone-${Date.now()}`);
    const r = await run('git', ['clone', '-q', `ssh://${it.viaProxyCommand}${it.gitRepo}`, dest], { env: it.env({ GIT_SSH_COMMAND: `ssh -F ${it.sshConfig}` }) });
    assert.equal(r.status, 0, r.stderr + it.tail());
    assert.equal(readFileSync(join(dest, 'README'), 'utf8'), it.gitText);
    await it.expectNodeEvents();
  });

  test(`${mode}: ControlMaster: two commands over one master connection`, async () => {
    const sock = join(it.c.work, 'cm.sock');
    // The master stays in the foreground (a forked one would keep the pipes open).
    const master = spawn('ssh', ['-F', it.sshConfig, '-M', '-S', sock, '-N', ...it.jump, `${LOCAL_USER}@web1`], { env: it.env(), stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    master.stderr.on('data', (d) => { err += d; });
    try {
      await until(() => existsSync(sock), `the control socket (${err})`);
        for (const k of [1, 2]) {
        const r = await it.ssh(['-S', sock, '-o', 'ControlMaster=no', ...it.jump, `${LOCAL_USER}@web1`, `echo cm-${k}; exit ${k + 1}`]);
        assert.equal(r.status, k + 1, r.stderr);
        assert.equal(r.stdout.trim(), `cm-${k}`);
        // The command really went over the master: no new connection to the listener.
        assert.doesNotMatch(r.stderr, /Authenticated/);
      }
      const check = await it.ssh(['-S', sock, '-O', 'check', `${LOCAL_USER}@web1`]);
      assert.equal(check.status, 0, check.stderr);
      if (mode === 'recording') await it.expectNodeEvents(2);
    } finally {
      await it.ssh(['-S', sock, '-O', 'exit', `${LOCAL_USER}@web1`]);
      master.kill('SIGTERM');
    }
  });

  test(`${mode}: gpg-agent as the SSH agent (the key in gpg-agent, the certificate from its file)`, async () => {
    // A short GNUPGHOME: the agent's socket path must fit in a sockaddr_un.
    const home = mkdtempSync(join(tmpdir(), 'pg-'));
    chmodSync(home, 0o700);
    writeFileSync(join(home, 'gpg-agent.conf'), `enable-ssh-support\npinentry-program ${join(import.meta.dirname, 'clients', 'pinentry-fixed.sh')}\n`);
    const launch = await run('gpgconf', ['--homedir', home, '--launch', 'gpg-agent']);
    assert.equal(launch.status, 0, launch.stderr);
    try {
      const sock = (await run('gpgconf', ['--homedir', home, '--list-dirs', 'agent-ssh-socket'])).stdout.trim();
      const env = it.env({ SSH_AUTH_SOCK: sock, GNUPGHOME: home });
      const add = await run('ssh-add', [it.key], { env });
      assert.equal(add.status, 0, add.stderr);
      // gpg-agent (2.2) accepts the certificate from ssh-add but keeps only the key.
      const listed = await run('ssh-add', ['-L'], { env });
      assert.match(listed.stdout, /^ssh-ed25519 /m);
      // ssh signs with the agent's key: the identity is the public key, the certificate its file.
      const pub = join(home, 'id.pub');
      copyFileSync(`${it.key}.pub`, pub);
      copyFileSync(it.cert, join(home, 'id-cert.pub'));
      const r = await it.ssh(['-o', `IdentityFile=${pub}`, '-o', `CertificateFile=${join(home, 'id-cert.pub')}`, ...it.jump, `${LOCAL_USER}@web1`, 'echo gpg-$((6*7)); exit 3'], { env });
      if (mode === 'recording') {
        // The proxy logs in to the node with a certificate from the forwarded agent, and
        // gpg-agent holds none: refused with exit 255 and a reason, never a hang.
        assert.equal(r.status, 255, r.stderr);
        assert.match(r.stderr, /certificate|agent/i);
      } else {
        assert.equal(r.status, 3, r.stderr + it.tail());
        assert.equal(r.stdout.trim(), 'gpg-42');
        await it.expectNodeEvents();
      }
    } finally {
      await run('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
    }
  });

  if (mode === 'default') {
    test('login --add-keys-to-agent yes into ssh-agent and gpg-agent: the plain key and the certificate, both usable', async () => {
      for (const which of ['ssh-agent', 'gpg-agent'] as const) {
        const home = mkdtempSync(join(tmpdir(), 'pa-'));
        chmodSync(home, 0o700);
        let sock = it.agentSock;
        if (which === 'gpg-agent') {
          writeFileSync(join(home, 'gpg-agent.conf'), `enable-ssh-support\npinentry-program ${join(import.meta.dirname, 'clients', 'pinentry-fixed.sh')}\n`);
          assert.equal((await run('gpgconf', ['--homedir', home, '--launch', 'gpg-agent'])).status, 0);
          sock = (await run('gpgconf', ['--homedir', home, '--list-dirs', 'agent-ssh-socket'])).stdout.trim();
        }
        try {
          const env = it.env({ SSH_AUTH_SOCK: sock, GNUPGHOME: home });
          const tsh = join(home, 'tsh');
          const login = await runPostern(['login', '--proxy', it.c.serve.web, '--user', 'alice', '--password-stdin', '--otp', await it.c.freshCode('alice', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'), '--ca-pin', it.c.serve.caPin, '--add-keys-to-agent', 'yes'],
            { env: { TSH_HOME: tsh, SSH_AUTH_SOCK: sock, GNUPGHOME: home }, input: TEST_PASSWORD + '\n' });
          assert.equal(login.code, 0, `${which}: ${login.stderr}`);
          const listed = (await run('ssh-add', ['-L'], { env })).stdout;
          const lines = listed.trim().split('\n').filter((l) => l.includes('alice@'));
          // The plain key always; the certificate where the agent keeps certificates; no garbage.
          assert.ok(lines.some((l) => l.startsWith('ssh-ed25519 ')), `${which}:\n${listed}`);
          if (which === 'ssh-agent') assert.ok(lines.some((l) => l.startsWith('ssh-ed25519-cert-v01@openssh.com ')), listed);
          for (const l of lines) assert.match(l, /^ssh-ed25519(-cert-v01@openssh\.com)? [A-Za-z0-9+/=]+ alice@test\.example$/, `${which}: ${JSON.stringify(l)}`);
          // The agent signs: ssh through -J with the certificate file and the agent's key.
          const certFile = join(tsh, 'keys', '127.0.0.1', 'alice-ssh', 'test.example-cert.pub');
          const pub = join(home, 'id.pub');
          writeFileSync(pub, readFileSync(join(tsh, 'keys', '127.0.0.1', 'alice.pub')));
          const r = await it.ssh(['-o', `IdentityFile=${pub}`, '-o', `CertificateFile=${certFile}`, ...it.jump, `${LOCAL_USER}@web1`, 'echo agent-ok'], { env });
          assert.equal(r.status, 0, `${which}: ${r.stderr}`);
          assert.equal(r.stdout.trim(), 'agent-ok');
        } finally {
          if (which === 'gpg-agent') await run('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
          else await run('ssh-add', ['-D'], { env: it.env() }).then(() => run('ssh-add', [it.key], { env: it.env() }));
        }
      }
    });
  }

  test(`${mode}: -L, -R and -D forwards carry bytes to and from the node`, async () => {
    const [lport, rport, dport] = [await freePort(), await freePort(), await freePort()];
    const proc = spawn('ssh', ['-F', it.sshConfig, '-N', '-o', 'ExitOnForwardFailure=yes',
      '-L', `${lport}:127.0.0.1:${it.echoPort}`, '-R', `${rport}:127.0.0.1:${it.echoPort}`, '-D', `127.0.0.1:${dport}`,
      ...it.jump, `${LOCAL_USER}@web1`], { env: it.env(), stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (d) => { err += d; });
    try {
      let local = '';
      await until(async () => { local = await echoThrough(lport, 'via-L').catch(() => ''); return local === 'via-L'; }, `-L (${err})`);
      // -R: a port opened on the node (this machine) comes back to the client's echo server.
      let remote = '';
      await until(async () => { remote = await echoThrough(rport, 'via-R').catch(() => ''); return remote === 'via-R'; }, `-R (${err})`);
      assert.equal(await socksEcho(dport, it.echoPort, 'via-D'), 'via-D');
      if (mode === 'recording') {
        // Only the recording proxy sees inside the connection, so only it audits each forward.
        const fw = await it.audit('port.forward');
        assert.ok(fw.some((e) => e.success && e.port === it.echoPort && e.direction === 'local'), JSON.stringify(fw));
        assert.ok(fw.some((e) => e.success && e.port === rport && e.direction === 'remote'), JSON.stringify(fw));
      } else {
        await it.expectNodeEvents();
      }
    } finally {
      proc.kill('SIGTERM');
    }
  });
}

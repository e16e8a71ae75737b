// The ssh2 certificate patch (patches/ssh2+1.17.0+001…003, docs/ssh2-patches.md) against real OpenSSH:
// ssh2 as a client presenting a user certificate to sshd and receiving sshd's
// host certificate, and ssh2 as a server receiving a certificate from `ssh`.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { AuthContext, ClientChannel, ServerChannel } from 'ssh2';
import {
  connectWithCertificate,
  isCertAlgo,
  parseCertificateKeys,
  ssh2HasCertificateSupport,
  verifyCertAuthSignature,
  type CertPublicKeyAuthMethod,
} from '../../src/ssh/ssh2-certs.ts';

const { Client, Server } = ssh2;
const USER = userInfo().username;

/** Keys and certificates made with ssh-keygen in a temp dir. */
interface Fixture {
  dir: string;
  /** Path of a private key; `${path}-cert.pub` is its certificate when signed. */
  key(name: string): string;
  /** Wire blob of an OpenSSH public key or certificate file. */
  blob(file: string): Buffer;
}

function makeFixture(t: TestContext): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'postern-ssh2-patch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const keygen = (...args: string[]): void => {
    execFileSync('ssh-keygen', ['-q', ...args], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const gen = (name: string, type = 'ed25519'): void => {
    keygen('-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', name, '-f', join(dir, name));
  };
  gen('user_ca');
  gen('host_ca');
  gen('host'); // sshd's host keys, certified by host_ca
  gen('host_rsa', 'rsa');
  keygen('-s', 'host_ca', '-h', '-I', 'host', '-n', '127.0.0.1,localhost', '-V', '+1h', 'host.pub', 'host_rsa.pub');
  for (const [name, type] of [['user', 'ed25519'], ['user_ecdsa', 'ecdsa'], ['user_rsa', 'rsa']] as const) {
    gen(name, type);
    keygen('-s', 'user_ca', '-I', `${name}@postern`, '-n', USER, '-V', '+1h', `${name}.pub`);
  }
  gen('other');
  keygen('-s', 'user_ca', '-I', 'other@postern', '-n', 'nobody-else', '-V', '+1h', 'other.pub');
  gen('plain'); // no certificate next to it, so `ssh -i plain` offers the bare key
  gen('ssh2_host'); // host key of the ssh2 Server
  return {
    dir,
    key: (name) => join(dir, name),
    blob: (file) => Buffer.from(readFileSync(join(dir, file), 'utf8').trim().split(/\s+/)[1], 'base64'),
  };
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** A real sshd on loopback that trusts only the user CA and presents a host certificate. */
interface Sshd {
  port: number;
  /** Everything sshd wrote to stderr so far, for failure messages. */
  log(): string;
}

async function startSshd(t: TestContext, fx: Fixture): Promise<Sshd> {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation dir
  const port = await freePort();
  const config = join(fx.dir, 'sshd_config');
  writeFileSync(config, [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${fx.key('host')}`,
    `HostCertificate ${fx.key('host')}-cert.pub`,
    `HostKey ${fx.key('host_rsa')}`,
    `HostCertificate ${fx.key('host_rsa')}-cert.pub`,
    `TrustedUserCAKeys ${fx.key('user_ca')}.pub`,
    'AuthorizedKeysFile none',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    'StrictModes no',
    'UsePAM no',
    'PidFile none',
    'LogLevel VERBOSE',
    '',
  ].join('\n'));
  const proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => { log += d; });
  t.after(() => { proc.kill(); });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sshd did not start:\n${log}`)), 10_000);
    const check = (): void => {
      if (log.includes('Server listening on')) {
        clearTimeout(timer);
        proc.stderr.off('data', check);
        resolve();
      }
    };
    proc.stderr.on('data', check);
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`sshd exited ${code}:\n${log}`)); });
  });
  return { port, log: () => log };
}

/** Runs `body`, adding a server's log to whatever it throws. */
async function withLog<T>(log: () => string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof Error) err.message += `\n--- server log ---\n${log()}`;
    throw err;
  }
}

function exec(client: InstanceType<typeof Client>, command: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err: Error | undefined, stream: ClientChannel) => {
      if (err) return reject(err);
      let stdout = '';
      let code = -1;
      stream.on('data', (d: Buffer) => { stdout += d; });
      stream.stderr.resume();
      stream.on('exit', (c: number) => { code = c; });
      stream.on('close', () => resolve({ code, stdout }));
    });
  });
}

function newClient(t: TestContext): InstanceType<typeof Client> {
  const client = new Client();
  t.after(() => client.end());
  return client;
}

test('installed ssh2 carries the certificate patch', () => {
  assert.equal(ssh2HasCertificateSupport(), true, 'run `npx patch-package` (postinstall) to apply patches/');
});

test('ssh2 client authenticates to sshd with a user certificate', async (t) => {
  const fx = makeFixture(t);
  const sshd = await startSshd(t, fx);
  const base = { host: '127.0.0.1', port: sshd.port, username: USER, readyTimeout: 10_000 };

  await t.test('connect option `certificate` (ed25519) runs a command', () => withLog(sshd.log, async () => {
    const client = await connectWithCertificate(newClient(t), {
      ...base,
      privateKey: readFileSync(fx.key('user')),
      certificate: readFileSync(`${fx.key('user')}-cert.pub`),
    });
    assert.deepEqual(await exec(client, 'echo ok'), { code: 0, stdout: 'ok\n' });
    assert.match(sshd.log(), /Accepted publickey for \S+ .*ED25519-CERT/);
  }));

  await t.test('the same key without its certificate is refused', () => withLog(sshd.log, async () => {
    await assert.rejects(
      connectWithCertificate(newClient(t), { ...base, privateKey: readFileSync(fx.key('user')) }),
      /All configured authentication methods failed/,
    );
  }));

  await t.test('a certificate for other principals is refused', () => withLog(sshd.log, async () => {
    await assert.rejects(
      connectWithCertificate(newClient(t), {
        ...base,
        privateKey: readFileSync(fx.key('other')),
        certificate: readFileSync(`${fx.key('other')}-cert.pub`),
      }),
      /All configured authentication methods failed/,
    );
  }));

  await t.test('a certificate of another key is rejected before connecting', async () => {
    await assert.rejects(
      connectWithCertificate(newClient(t), {
        ...base,
        privateKey: readFileSync(fx.key('user')),
        certificate: readFileSync(`${fx.key('user_rsa')}-cert.pub`),
      }),
      /Cannot use certificate: Certificate does not match key/,
    );
  });

  for (const name of ['user', 'user_ecdsa', 'user_rsa']) {
    await t.test(`authHandler publickey entry with a wire-blob certificate (${name})`, () => withLog(sshd.log, async () => {
      const method: CertPublicKeyAuthMethod = {
        type: 'publickey',
        username: USER,
        key: readFileSync(fx.key(name)),
        certificate: fx.blob(`${name}-cert.pub`),
      };
      const client = await connectWithCertificate(newClient(t), { ...base, authHandler: [method] });
      assert.deepEqual(await exec(client, 'echo ok'), { code: 0, stdout: 'ok\n' });
    }));
  }

  await t.test('ssh-agent holding key and certificate', () => withLog(sshd.log, async () => {
    const sock = join(fx.dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    t.after(() => { agent.kill(); });
    for (let i = 0; i < 50 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
    // ssh-add loads user-cert.pub beside the key: the agent holds the plain key and the certificate
    execFileSync('ssh-add', [fx.key('user')], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'pipe' });
    const logStart = sshd.log().length;
    const client = await connectWithCertificate(newClient(t), { ...base, agent: sock });
    assert.deepEqual(await exec(client, 'echo ok'), { code: 0, stdout: 'ok\n' });
    assert.match(sshd.log().slice(logStart), /Accepted publickey for \S+ .*ED25519-CERT/);
  }));
});

test('ssh2 client receives the sshd host certificate in hostVerifier', async (t) => {
  const fx = makeFixture(t);
  const sshd = await startSshd(t, fx);
  const base = {
    host: '127.0.0.1',
    port: sshd.port,
    username: USER,
    privateKey: readFileSync(fx.key('user')),
    certificate: readFileSync(`${fx.key('user')}-cert.pub`),
    readyTimeout: 10_000,
  };
  const hostCaBlob = fx.blob('host_ca.pub');

  await t.test('asking for ssh-ed25519-cert-v01@openssh.com yields the certificate, checked against the host CA', () => withLog(sshd.log, async () => {
    const seen: Buffer[] = [];
    let debug = '';
    const client = await connectWithCertificate(newClient(t), {
      ...base,
      debug: (msg: string) => { debug += `${msg}\n`; },
      algorithms: { serverHostKey: ['ssh-ed25519-cert-v01@openssh.com'] },
      hostVerifier: (key: Buffer) => {
        seen.push(key);
        const cert = parseCertificateKeys(key);
        if (!cert.signatureKey.equals(hostCaBlob)) return false;
        // CA signature: string "ssh-ed25519", string 64 raw bytes
        const raw = cert.signature.subarray(4 + 11 + 4);
        return verify(null, cert.signedData, ed25519Key(hostCaBlob), raw);
      },
    });
    assert.equal(seen.length, 1);
    assert.deepEqual(seen[0], fx.blob('host-cert.pub'));
    // the KEX signature was checked with the key inside the certificate
    assert.match(debug, /Verifying signature[\s\S]*Verified signature/);
    assert.deepEqual(await exec(client, 'echo ok'), { code: 0, stdout: 'ok\n' });
  }));

  for (const algo of ['rsa-sha2-512-cert-v01@openssh.com', 'rsa-sha2-256-cert-v01@openssh.com'] as const) {
    await t.test(`asking for ${algo} yields the RSA host certificate`, () => withLog(sshd.log, async () => {
      const seen: Buffer[] = [];
      const client = await connectWithCertificate(newClient(t), {
        ...base,
        algorithms: { serverHostKey: [algo] },
        hostVerifier: (key: Buffer) => { seen.push(key); return true; },
      });
      assert.deepEqual(seen, [fx.blob('host_rsa-cert.pub')]);
      assert.deepEqual(await exec(client, 'echo ok'), { code: 0, stdout: 'ok\n' });
    }));
  }

  await t.test('hostVerifier can refuse the host certificate', () => withLog(sshd.log, async () => {
    let called = false;
    await assert.rejects(
      connectWithCertificate(newClient(t), {
        ...base,
        algorithms: { serverHostKey: ['ssh-ed25519-cert-v01@openssh.com', 'ssh-ed25519'] },
        hostVerifier: (key: Buffer) => { called = isCertAlgo(parseCertificateKeys(key).type); return false; },
      }),
      /Host denied/,
    );
    assert.equal(called, true);
  }));

  await t.test('without asking, hostVerifier still gets the plain host key', () => withLog(sshd.log, async () => {
    const seen: Buffer[] = [];
    await connectWithCertificate(newClient(t), { ...base, hostVerifier: (key: Buffer) => { seen.push(key); return true; } });
    assert.deepEqual(seen, [fx.blob('host.pub')]);
  }));
});

/** An Ed25519 public key (SSH wire format) as a KeyObject. */
function ed25519Key(wire: Buffer) {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: wire.subarray(4 + 11 + 4).toString('base64url') }, format: 'jwk' });
}

interface SeenAuth {
  method: string;
  algo?: string;
  data?: Buffer;
  signed: boolean;
  hashAlgo?: string;
  verified?: boolean;
  tamperedVerified?: boolean;
  /** ssh2's own parser reads the certified key out of the certificate too. */
  ssh2Verified?: boolean;
}

/** An ssh2 Server that accepts only certificates from the user CA, checking the signature itself. */
async function startSsh2Server(t: TestContext, fx: Fixture): Promise<{ port: number; seen: SeenAuth[]; log: () => string }> {
  const seen: SeenAuth[] = [];
  const userCa = fx.blob('user_ca.pub');
  let log = '';
  const server = new Server({ hostKeys: [readFileSync(fx.key('ssh2_host'))] }, (conn) => {
    conn.on('error', (err: Error) => { log += `conn error: ${err.message}\n`; });
    conn.on('authentication', (ctx: AuthContext) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const entry: SeenAuth = { method: ctx.method, algo: ctx.key.algo, data: ctx.key.data, signed: !!ctx.signature, hashAlgo: ctx.hashAlgo };
      seen.push(entry);
      if (!isCertAlgo(ctx.key.algo)) return ctx.reject();
      if (!parseCertificateKeys(ctx.key.data).signatureKey.equals(userCa)) return ctx.reject();
      if (!ctx.signature) return ctx.accept(); // the client's query: would this key do?
      entry.verified = verifyCertAuthSignature(ctx);
      const parsed = ssh2.utils.parseKey(ctx.key.data);
      entry.ssh2Verified = !(parsed instanceof Error) && !Array.isArray(parsed)
        && parsed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo);
      const tampered = Buffer.from(ctx.signature);
      tampered[tampered.length - 1] ^= 1;
      entry.tamperedVerified = verifyCertAuthSignature({ ...ctx, key: ctx.key, signature: tampered });
      return entry.verified ? ctx.accept() : ctx.reject();
    });
    conn.on('ready', () => {
      conn.on('session', (accept) => {
        accept().on('exec', (acceptExec) => {
          const channel: ServerChannel = acceptExec();
          channel.exit(0);
          channel.end();
        });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  return { port: (server.address() as AddressInfo).port, seen, log: () => log };
}

/** Runs OpenSSH's `ssh` once; resolves with its exit code and stderr. */
function runSsh(port: number, key: string, extra: string[]): Promise<{ code: number | null; stderr: string }> {
  const args = [
    '-F', '/dev/null',
    '-i', key,
    ...extra,
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'LogLevel=ERROR',
    '-o', 'ConnectTimeout=10',
    '-p', String(port),
    `${USER}@127.0.0.1`,
    'true',
  ];
  const env = { ...process.env };
  delete env.SSH_AUTH_SOCK;
  return new Promise((resolve) => {
    const proc = spawn('ssh', args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    proc.on('close', (code) => resolve({ code, stderr }));
  });
}

test('patched ssh2 server receives a certificate from OpenSSH ssh', async (t) => {
  const fx = makeFixture(t);
  const srv = await startSsh2Server(t, fx);

  // ctx.key.algo names the key type; for RSA, ctx.hashAlgo carries the rsa-sha2-* choice
  const cases = [
    ['user', 'ssh-ed25519-cert-v01@openssh.com', undefined],
    ['user_ecdsa', 'ecdsa-sha2-nistp256-cert-v01@openssh.com', undefined],
    ['user_rsa', 'ssh-rsa-cert-v01@openssh.com', 'sha256'],
  ] as const;
  for (const [name, algo, hashAlgo] of cases) {
    await t.test(`ssh -o CertificateFile (${name}) is accepted after the app verifies the signature`, () => withLog(srv.log, async () => {
      srv.seen.length = 0;
      const res = await runSsh(srv.port, fx.key(name), ['-o', `CertificateFile=${fx.key(name)}-cert.pub`]);
      assert.equal(res.code, 0, `ssh failed: ${res.stderr}`);
      const signed = srv.seen.filter((s) => s.signed);
      assert.equal(signed.length, 1, JSON.stringify(srv.seen.map((s) => s.algo)));
      assert.equal(signed[0].algo, algo);
      assert.equal(signed[0].hashAlgo, hashAlgo);
      assert.deepEqual(signed[0].data, fx.blob(`${name}-cert.pub`));
      assert.equal(signed[0].verified, true);
      assert.equal(signed[0].tamperedVerified, false);
      assert.equal(signed[0].ssh2Verified, true);
    }));
  }

  await t.test('a plain key is seen as plain and refused', () => withLog(srv.log, async () => {
    srv.seen.length = 0;
    const res = await runSsh(srv.port, fx.key('plain'), []);
    assert.equal(res.code, 255);
    assert.deepEqual(srv.seen.map((s) => s.algo), ['ssh-ed25519']);
    assert.deepEqual(srv.seen[0].data, fx.blob('plain.pub'));
  }));
});

// What recording proxy mode needs of ssh2's Server, against real OpenSSH:
// presenting an OpenSSH host certificate (the patch's `hostKeys` entry
// `{ key, certificate }`), and using the agent a client forwards with `ssh -A`
// (the patch's `conn.openssh_authAgent`, and ForwardedAgent) to log in to a
// real sshd with the user's key and certificate.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { verify } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { AuthContext, ClientChannel, Connection, ServerChannel, ServerConfig } from 'ssh2';
import { certHostKey, connectWithCertificate, parseCertificateKeys, verifyCertAuthSignature } from '../../src/ssh/ssh2-certs.ts';
import type { CertConnectConfig, SignedPublicKeyAuth } from '../../src/ssh/ssh2-certs.ts';
import { AGENT_FORWARDING_HINT, ForwardedAgent, openAgentChannel } from '../../src/ssh/forwarded-agent.ts';
import { publicKeyFromWire, verifySsh } from '../../src/ssh/keys.ts';
import { SshWriter } from '../../src/ssh/wire.ts';
import { LOCAL_USER, startAgent, startSshd } from '../helpers/openssh.ts';

const { Client, Server } = ssh2;

/** Keys and certificates made with ssh-keygen in a temp dir. */
interface Keys {
  dir: string;
  /** Path of a file in the dir (a private key: `${path}.pub`, `${path}-cert.pub`). */
  path(name: string): string;
  /** Generates a key pair without a passphrase. */
  gen(name: string, type?: 'ed25519' | 'ecdsa' | 'rsa'): void;
  /** Signs `name.pub` with a CA; the certificate is `name-cert.pub`. */
  sign(ca: string, name: string, ...args: string[]): void;
  /** Wire blob of an OpenSSH public key or certificate file. */
  blob(file: string): Buffer;
  /** The first line of a text file in the dir. */
  line(file: string): string;
}

function makeKeys(t: TestContext): Keys {
  const dir = mkdtempSync(join(tmpdir(), 'postern-ssh2-extras-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const keygen = (...args: string[]): void => {
    execFileSync('ssh-keygen', ['-q', ...args], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const line = (file: string): string => readFileSync(join(dir, file), 'utf8').trim();
  return {
    dir,
    path: (name) => join(dir, name),
    gen: (name, type = 'ed25519') => keygen('-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', name, '-f', join(dir, name)),
    sign: (ca, name, ...args) => keygen('-s', ca, '-V', '+1h', ...args, `${name}.pub`),
    blob: (file) => Buffer.from(line(file).split(/\s+/)[1], 'base64'),
    line,
  };
}

interface SshResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs OpenSSH's `ssh` with no config file and no agent unless `env` gives one. */
function runSsh(args: string[], env: Record<string, string> = {}): Promise<SshResult> {
  const fullEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!env.SSH_AUTH_SOCK) delete fullEnv.SSH_AUTH_SOCK;
  return new Promise((resolve) => {
    const proc = spawn('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', ...args], {
      env: fullEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    proc.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    proc.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** An ssh2 Server that lets anyone in ('none') and answers every exec with "ran: COMMAND". */
async function startEchoServer(t: TestContext, hostKeys: ServerConfig['hostKeys']): Promise<number> {
  const server = new Server({ hostKeys }, (conn) => {
    conn.on('error', () => { /* the client went away */ });
    conn.on('authentication', (ctx: AuthContext) => ctx.accept());
    conn.on('ready', () => {
      conn.on('session', (accept) => {
        accept().on('exec', (acceptExec, _reject, info) => {
          const ch = acceptExec();
          ch.write(`ran: ${info.command}\n`);
          ch.exit(0);
          ch.end();
        });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  return (server.address() as AddressInfo).port;
}

function exec(client: InstanceType<typeof Client>, command: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err: Error | undefined, stream: ClientChannel) => {
      if (err) return reject(err);
      let stdout = '';
      let code = -1;
      stream.on('data', (d: Buffer) => { stdout += d.toString(); });
      stream.stderr.resume();
      stream.on('exit', (c: number) => { code = c; });
      stream.on('close', () => resolve({ code, stdout }));
    });
  });
}

function connect(t: TestContext, config: CertConnectConfig): Promise<InstanceType<typeof Client>> {
  const client = new Client();
  t.after(() => client.end());
  return connectWithCertificate(client, { host: '127.0.0.1', username: LOCAL_USER, readyTimeout: 10_000, ...config });
}

test('ssh2 Server presents an OpenSSH host certificate', async (t) => {
  const k = makeKeys(t);
  k.gen('host_ca');
  k.gen('other_ca');
  // One server holds three host keys, each with a certificate for its name
  for (const type of ['ed25519', 'ecdsa', 'rsa'] as const) {
    k.gen(`host_${type}`, type);
    k.sign('host_ca', `host_${type}`, '-h', '-I', `web1-${type}`, '-n', 'web1,127.0.0.1');
  }
  // The same ed25519 key certified for another name only, and by another CA
  for (const name of ['named', 'foreign']) {
    copyFileSync(k.path('host_ed25519.pub'), k.path(`${name}.pub`));
  }
  k.sign('host_ca', 'named', '-h', '-I', 'web1-only', '-n', 'web1');
  k.sign('other_ca', 'foreign', '-h', '-I', 'foreign', '-n', 'web1,127.0.0.1');
  k.gen('user');
  k.sign('host_ca', 'user', '-I', 'not-a-host', '-n', LOCAL_USER);

  const hostKeys = (['ed25519', 'ecdsa', 'rsa'] as const).map((type) =>
    certHostKey(readFileSync(k.path(`host_${type}`)), readFileSync(k.path(`host_${type}-cert.pub`))));
  const port = await startEchoServer(t, hostKeys);
  const knownHosts = k.path('known_hosts');
  writeFileSync(knownHosts, `@cert-authority * ${k.line('host_ca.pub')}\n`);
  const strict = ['-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'GlobalKnownHostsFile=/dev/null'];
  const hostCaFingerprint = execFileSync('ssh-keygen', ['-l', '-f', k.path('host_ca.pub')]).toString().split(' ')[1];

  await t.test('OpenSSH ssh with @cert-authority and strict checking connects', async () => {
    const res = await runSsh([...strict, '-v', '-o', 'HostKeyAlgorithms=ssh-ed25519-cert-v01@openssh.com,ssh-ed25519', '-p', String(port), `${LOCAL_USER}@127.0.0.1`, 'echo', 'hi']);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'ran: echo hi\n');
    assert.match(res.stderr, /kex: host key algorithm: ssh-ed25519-cert-v01@openssh\.com/);
    assert.ok(res.stderr.includes(`Server host certificate: ssh-ed25519-cert-v01@openssh.com`), res.stderr);
    assert.ok(res.stderr.includes(`ID "web1-ed25519" CA ssh-ed25519 ${hostCaFingerprint}`), res.stderr);
    assert.match(res.stderr, /is known and matches the ED25519-CERT host certificate/);
  });

  for (const algo of ['ecdsa-sha2-nistp256-cert-v01@openssh.com', 'rsa-sha2-512-cert-v01@openssh.com', 'rsa-sha2-256-cert-v01@openssh.com']) {
    await t.test(`OpenSSH ssh asking for ${algo} gets that certificate`, async () => {
      const res = await runSsh([...strict, '-v', '-o', `HostKeyAlgorithms=${algo}`, '-p', String(port), `${LOCAL_USER}@127.0.0.1`, 'true']);
      assert.equal(res.code, 0, res.stderr);
      assert.ok(res.stderr.includes(`kex: host key algorithm: ${algo}`), res.stderr);
      assert.match(res.stderr, /is known and matches the (ECDSA|RSA)-CERT host certificate/);
    });
  }

  await t.test('the plain key is still offered to a client that knows only it', async () => {
    const plainKnown = k.path('known_hosts_plain');
    writeFileSync(plainKnown, `[127.0.0.1]:${port} ${k.line('host_ed25519.pub')}\n`);
    const res = await runSsh(['-o', `UserKnownHostsFile=${plainKnown}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'HostKeyAlgorithms=ssh-ed25519', '-p', String(port), `${LOCAL_USER}@127.0.0.1`, 'true']);
    assert.equal(res.code, 0, res.stderr);
  });

  await t.test('a certificate for another name is refused by ssh, and accepted for its own name', async () => {
    const namedPort = await startEchoServer(t, [certHostKey(readFileSync(k.path('host_ed25519')), k.line('named-cert.pub'))]);
    const refused = await runSsh([...strict, '-o', 'HostKeyAlgorithms=ssh-ed25519-cert-v01@openssh.com,ssh-ed25519', '-p', String(namedPort), `${LOCAL_USER}@127.0.0.1`, 'true']);
    assert.equal(refused.code, 255);
    assert.match(refused.stderr, /name is not a listed principal/);
    assert.match(refused.stderr, /Host key verification failed/);
    // As ssh checks it for `ssh web1` through a ProxyCommand
    const asWeb1 = await runSsh([...strict, '-o', 'HostKeyAlias=web1', '-p', String(namedPort), `${LOCAL_USER}@127.0.0.1`, 'true']);
    assert.equal(asWeb1.code, 0, asWeb1.stderr);
    const asWeb2 = await runSsh([...strict, '-o', 'HostKeyAlias=web2', '-p', String(namedPort), `${LOCAL_USER}@127.0.0.1`, 'true']);
    assert.equal(asWeb2.code, 255);
    assert.match(asWeb2.stderr, /Host key verification failed/);
  });

  await t.test('a certificate from another CA is refused by ssh, and accepted where that CA is trusted', async () => {
    const foreignPort = await startEchoServer(t, [certHostKey(readFileSync(k.path('host_ed25519')), k.blob('foreign-cert.pub'))]);
    const res = await runSsh([...strict, '-o', 'HostKeyAlgorithms=ssh-ed25519-cert-v01@openssh.com,ssh-ed25519', '-p', String(foreignPort), `${LOCAL_USER}@127.0.0.1`, 'true']);
    assert.equal(res.code, 255);
    assert.match(res.stderr, /Host key verification failed/);
    // …and accepted by a client that trusts that CA
    const trusting = k.path('known_hosts_other_ca');
    writeFileSync(trusting, `@cert-authority * ${k.line('other_ca.pub')}\n`);
    const accepted = await runSsh(['-o', `UserKnownHostsFile=${trusting}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'HostKeyAlgorithms=ssh-ed25519-cert-v01@openssh.com', '-p', String(foreignPort), `${LOCAL_USER}@127.0.0.1`, 'true']);
    assert.equal(accepted.code, 0, accepted.stderr);
  });

  for (const algo of ['ssh-ed25519-cert-v01@openssh.com', 'rsa-sha2-512-cert-v01@openssh.com'] as const) {
    await t.test(`ssh2 Client asking for ${algo} gets the certificate and verifies the KEX signature with its key`, async () => {
      const seen: Buffer[] = [];
      let debug = '';
      const client = await connect(t, {
        port,
        debug: (msg: string) => { debug += `${msg}\n`; },
        algorithms: { serverHostKey: [algo] },
        hostVerifier: (key: Buffer) => { seen.push(key); return true; },
      });
      const type = algo.startsWith('rsa') ? 'rsa' : 'ed25519';
      assert.deepEqual(seen, [k.blob(`host_${type}-cert.pub`)]);
      assert.deepEqual(parseCertificateKeys(seen[0]).signatureKey, k.blob('host_ca.pub'));
      assert.match(debug, /Verifying signature[\s\S]*Verified signature/);
      assert.deepEqual(await exec(client, 'hello'), { code: 0, stdout: 'ran: hello\n' });
    });
  }

  await t.test('ssh2 Client not asking for certificates gets the plain key', async () => {
    const seen: Buffer[] = [];
    await connect(t, { port, hostVerifier: (key: Buffer) => { seen.push(key); return true; } });
    assert.deepEqual(seen, [k.blob('host_ed25519.pub')]);
  });

  await t.test('certHostKey takes the certificate as a file, a line or a wire blob', () => {
    const key = readFileSync(k.path('host_ed25519'));
    const blob = k.blob('host_ed25519-cert.pub');
    assert.deepEqual(certHostKey(key, readFileSync(k.path('host_ed25519-cert.pub'))).certificate, blob);
    assert.deepEqual(certHostKey(key, k.line('host_ed25519-cert.pub')).certificate, blob);
    assert.deepEqual(certHostKey(key, blob).certificate, blob);
  });

  await t.test('certHostKey refuses a user certificate and a certificate of another key', () => {
    assert.throws(() => certHostKey(readFileSync(k.path('user')), k.line('user-cert.pub')), { code: 'ERR_POSTERN_CERT_WRONG_TYPE' });
    assert.throws(() => certHostKey(readFileSync(k.path('host_ecdsa')), k.line('host_ed25519-cert.pub')), { code: 'ERR_POSTERN_CERT_KEY_MISMATCH' });
  });

  await t.test('the patched Server refuses a certificate of another key', () => {
    assert.throws(
      () => new Server({ hostKeys: [{ key: readFileSync(k.path('host_ecdsa')), certificate: k.line('host_ed25519-cert.pub') } as never] }),
      /Cannot use host certificate: Certificate does not match key/,
    );
  });
});

/** What the test's proxy-like server saw on one connection. */
interface AgentServerSeen {
  agentRequests: number;
  errors: string[];
}

/**
 * An ssh2 Server that does what recording mode will: accepts user certificates
 * of the user CA, and runs each exec on the real sshd as the same user, logging
 * in with the client's forwarded agent and forwarding that agent on.
 */
async function startAgentProxy(t: TestContext, userCa: Buffer, hostKey: Buffer, sshdPort: number): Promise<{ port: number; seen: AgentServerSeen }> {
  const seen: AgentServerSeen = { agentRequests: 0, errors: [] };
  const server = new Server({ hostKeys: [hostKey] }, (conn: Connection) => {
    conn.on('error', (err: Error) => seen.errors.push(err.message));
    conn.on('authentication', (ctx: AuthContext) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      try {
        if (!parseCertificateKeys(ctx.key.data).signatureKey.equals(userCa)) return ctx.reject();
      } catch {
        return ctx.reject();
      }
      if (!ctx.signature) return ctx.accept();
      return verifyCertAuthSignature(ctx as unknown as SignedPublicKeyAuth) ? ctx.accept() : ctx.reject();
    });
    conn.on('ready', () => {
      conn.on('session', (accept) => {
        const session = accept();
        let agentForwarded = false;
        session.on('auth-agent', (acceptAgent) => {
          seen.agentRequests++;
          agentForwarded = true;
          acceptAgent?.();
        });
        session.on('exec', (acceptExec, _reject, info) => {
          const ch = acceptExec();
          const fail = (message: string): void => {
            ch.stderr.write(`${message}\r\n`);
            ch.exit(255);
            ch.end();
          };
          if (!agentForwarded) return fail(`recording mode needs agent forwarding\r\nhint: ${AGENT_FORWARDING_HINT}`);
          void runUpstream(conn, sshdPort, info.command, ch).catch((err: Error) => fail(`error: ${err.message}`));
        });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  return { port: (server.address() as AddressInfo).port, seen };
}

/** Logs in to sshd with the forwarded agent, runs `command` there, and relays it to `ch`. */
async function runUpstream(conn: Connection, sshdPort: number, command: string, ch: ServerChannel): Promise<void> {
  const agent = new ForwardedAgent(() => openAgentChannel(conn));
  const upstream = new Client();
  ch.on('close', () => upstream.end());
  await connectWithCertificate(upstream, {
    host: '127.0.0.1', port: sshdPort, username: LOCAL_USER, agent, agentForward: true, readyTimeout: 10_000,
  });
  await new Promise<void>((resolve, reject) => {
    upstream.exec(command, (err: Error | undefined, stream: ClientChannel) => {
      if (err) return reject(err);
      stream.pipe(ch, { end: false });
      stream.stderr.pipe(ch.stderr, { end: false });
      stream.on('exit', (code: number | null) => ch.exit(code ?? 255));
      stream.on('close', () => { ch.end(); upstream.end(); resolve(); });
    });
  });
}

test('ssh2 Server uses the agent an OpenSSH client forwards to log in to sshd', async (t) => {
  const k = makeKeys(t);
  k.gen('user_ca');
  k.gen('user');
  k.sign('user_ca', 'user', '-I', 'user@postern', '-n', LOCAL_USER);
  k.gen('proxy_host');
  const sshd = await startSshd({ trustedUserCaKeys: k.line('user_ca.pub') });
  t.after(() => sshd.stop());
  const proxy = await startAgentProxy(t, k.blob('user_ca.pub'), readFileSync(k.path('proxy_host')), sshd.port);

  const agent = await startAgent();
  t.after(() => agent.stop());
  // ssh-add loads user-cert.pub beside the key: the agent holds the key and the certificate
  execFileSync('ssh-add', [k.path('user')], { env: { ...process.env, SSH_AUTH_SOCK: agent.socket }, stdio: 'pipe' });
  const emptyAgent = await startAgent();
  t.after(() => emptyAgent.stop());

  const sshTo = (command: string, extra: string[]): string[] => [
    '-i', k.path('user'), '-o', `CertificateFile=${k.path('user')}-cert.pub`, '-o', 'IdentitiesOnly=yes',
    '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
    ...extra, '-p', String(proxy.port), `${LOCAL_USER}@127.0.0.1`, command,
  ];
  const withLog = (res: SshResult): string => `${res.stderr}\n--- sshd ---\n${sshd.log()}`;

  await t.test('ssh -A: the server logs in to sshd with the forwarded certificate and relays the output', async () => {
    const logStart = sshd.log().length;
    const res = await runSsh(sshTo('echo via-agent', ['-A']), { SSH_AUTH_SOCK: agent.socket });
    assert.equal(res.code, 0, withLog(res));
    assert.equal(res.stdout, 'via-agent\n');
    assert.match(sshd.log().slice(logStart), /Accepted publickey for \S+ .*ED25519-CERT/);
    assert.equal(proxy.seen.agentRequests, 1);
  });

  await t.test('the exit status of the command on sshd comes back', async () => {
    const res = await runSsh(sshTo('exit 7', ['-A']), { SSH_AUTH_SOCK: agent.socket });
    assert.equal(res.code, 7, withLog(res));
  });

  await t.test('the forwarded agent is forwarded on to sshd', async () => {
    const res = await runSsh(sshTo('ssh-add -L', ['-A']), { SSH_AUTH_SOCK: agent.socket });
    assert.equal(res.code, 0, withLog(res));
    assert.ok(res.stdout.includes(k.line('user-cert.pub').split(' ')[1]), res.stdout);
  });

  await t.test('without -A the app gets no agent request and tells the user how to forward one', async () => {
    const before = proxy.seen.agentRequests;
    const res = await runSsh(sshTo('echo via-agent', ['-o', 'ForwardAgent=no']), { SSH_AUTH_SOCK: agent.socket });
    assert.equal(res.code, 255);
    assert.equal(res.stdout, '');
    assert.match(res.stderr, /recording mode needs agent forwarding/);
    assert.match(res.stderr, /ssh -A/);
    assert.equal(proxy.seen.agentRequests, before);
  });

  await t.test('ssh -A with no reachable agent sends no agent request either', async () => {
    const before = proxy.seen.agentRequests;
    const res = await runSsh(sshTo('echo via-agent', ['-A']), { SSH_AUTH_SOCK: join(k.dir, 'no-agent.sock') });
    assert.equal(res.code, 255);
    assert.match(res.stderr, /recording mode needs agent forwarding/);
    assert.equal(proxy.seen.agentRequests, before);
  });

  await t.test('openAgentChannel rejects clearly when the client refuses the channel', async () => {
    // ssh2's Client refuses auth-agent channels unless it forwards an agent
    let refusal: unknown;
    const server = new Server({ hostKeys: [readFileSync(k.path('proxy_host'))] }, (conn: Connection) => {
      conn.on('error', () => undefined);
      conn.on('authentication', (ctx: AuthContext) => ctx.accept());
      conn.on('ready', () => {
        openAgentChannel(conn).then(() => { refusal = 'opened'; }, (err: unknown) => { refusal = err; }).finally(() => conn.end());
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => server.close());
    const client = await connect(t, { port: (server.address() as AddressInfo).port });
    await new Promise((resolve) => client.on('close', () => resolve(undefined)));
    assert.ok(refusal instanceof Error, String(refusal));
    assert.equal((refusal as { code?: string }).code, 'ERR_POSTERN_AGENT_NOT_FORWARDED');
    assert.match(refusal.message, /the client refused to open its forwarded agent/);
    assert.equal((refusal as { hint?: string }).hint, AGENT_FORWARDING_HINT);
  });

  await t.test('ssh -A with an empty agent: sshd refuses, the user hears why, nothing hangs', async () => {
    const res = await runSsh(sshTo('echo via-agent', ['-A']), { SSH_AUTH_SOCK: emptyAgent.socket });
    assert.equal(res.code, 255);
    assert.match(res.stderr, /error: All configured authentication methods failed/);
  });
});

/** A unix socket server that answers agent requests with `reply` (or never, or by hanging up). */
async function fakeAgentSocket(t: TestContext, dir: string, behave: (sock: Socket) => void): Promise<string> {
  const path = join(dir, `fake-${Math.random().toString(36).slice(2)}.sock`);
  const server = createServer((sock) => { sock.on('error', () => undefined); behave(sock); });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(() => server.close());
  return path;
}

/** A ForwardedAgent whose transport is a fresh unix socket connection per request. */
function socketAgent(path: string, options: ConstructorParameters<typeof ForwardedAgent>[1] = {}): ForwardedAgent {
  return new ForwardedAgent(() => new Promise((resolve, reject) => {
    const sock = createConnection(path);
    sock.once('connect', () => resolve(sock)).once('error', reject);
  }), options);
}

test('ForwardedAgent speaks PROTOCOL.agent to a real ssh-agent', async (t) => {
  const k = makeKeys(t);
  k.gen('ca');
  k.gen('user');
  k.sign('ca', 'user', '-I', 'user', '-n', LOCAL_USER);
  k.gen('user_rsa', 'rsa');
  const agentProc = await startAgent();
  t.after(() => agentProc.stop());
  const env = { ...process.env, SSH_AUTH_SOCK: agentProc.socket };
  execFileSync('ssh-add', [k.path('user'), k.path('user_rsa')], { env, stdio: 'pipe' });
  const agent = socketAgent(agentProc.socket);
  const data = Buffer.from('session id and userauth request');

  await t.test('list returns keys and the certificate; getIdentities puts certificates first', async () => {
    const ids = await agent.list();
    const wires = ids.map((id) => id.wire);
    assert.equal(ids.length, 3);
    assert.ok(wires.some((w) => w.equals(k.blob('user-cert.pub'))));
    assert.ok(wires.some((w) => w.equals(k.blob('user.pub'))));
    assert.ok(wires.some((w) => w.equals(k.blob('user_rsa.pub'))));
    const keys = await new Promise<Buffer[]>((resolve, reject) => agent.getIdentities((err, got) => (err ? reject(err) : resolve(got!))));
    assert.deepEqual(keys[0], k.blob('user-cert.pub'));
    assert.equal(keys.length, 3);
  });

  await t.test('filter narrows what ssh2 is offered', async () => {
    const certsOnly = socketAgent(agentProc.socket, { filter: (id) => id.wire.equals(k.blob('user-cert.pub')) });
    const keys = await new Promise<Buffer[]>((resolve, reject) => certsOnly.getIdentities((err, got) => (err ? reject(err) : resolve(got!))));
    assert.deepEqual(keys, [k.blob('user-cert.pub')]);
  });

  await t.test('signBlob with the certificate signs with its key', async () => {
    const sig = await agent.signBlob(k.blob('user-cert.pub'), data);
    assert.equal(verifySsh(k.blob('user.pub'), data, sig), true);
    assert.equal(verifySsh(k.blob('user.pub'), Buffer.from('other data'), sig), false);
  });

  for (const hash of ['sha256', 'sha512'] as const) {
    await t.test(`sign (ssh2's hook) with an RSA key and hash ${hash} asks for rsa-sha2 and returns the bare signature`, async () => {
      const sig = await new Promise<Buffer>((resolve, reject) => {
        agent.sign(k.blob('user_rsa.pub'), data, { hash }, (err, s) => (err ? reject(err) : resolve(s!)));
      });
      const rsa = publicKeyFromWire(k.blob('user_rsa.pub'));
      assert.equal(verify(hash, data, rsa, sig), true);
    });
  }

  await t.test('sign refuses a signature under another algorithm than the one asked for', async () => {
    // An agent that answers every request with an ssh-rsa (SHA-1) signature
    const sha1Sig = new SshWriter().string('ssh-rsa').string(Buffer.alloc(256)).toBuffer();
    const reply = new SshWriter().byte(14).string(sha1Sig).toBuffer();
    const sha1Agent = socketAgent(await fakeAgentSocket(t, k.dir, (sock) => sock.once('data', () => sock.write(new SshWriter().string(reply).toBuffer()))));
    await assert.rejects(new Promise((resolve, reject) => {
      sha1Agent.sign(k.blob('user_rsa.pub'), data, { hash: 'sha512' }, (err, s) => (err ? reject(err) : resolve(s)));
    }), { code: 'ERR_POSTERN_AGENT_PROTOCOL', message: /signed with ssh-rsa where rsa-sha2-512 was asked for/ });
  });

  await t.test('a key the agent does not hold: the agent refuses', async () => {
    k.gen('stranger');
    await assert.rejects(agent.signBlob(k.blob('stranger.pub'), data), { code: 'ERR_POSTERN_AGENT_FAILURE' });
  });

  await t.test('an agent that hangs up, says nothing or talks nonsense fails the request', async () => {
    const hangsUp = socketAgent(await fakeAgentSocket(t, k.dir, (sock) => sock.once('data', () => sock.end())));
    await assert.rejects(hangsUp.list(), { code: 'ERR_POSTERN_AGENT_CONNECTION' });
    const silent = socketAgent(await fakeAgentSocket(t, k.dir, () => undefined), { timeoutMs: 200 });
    await assert.rejects(silent.list(), { code: 'ERR_POSTERN_AGENT_TIMEOUT' });
    const huge = socketAgent(await fakeAgentSocket(t, k.dir, (sock) => sock.once('data', () => sock.write(Buffer.from([0x7f, 0, 0, 0])))));
    await assert.rejects(huge.list(), { code: 'ERR_POSTERN_AGENT_PROTOCOL' });
    const wrongType = socketAgent(await fakeAgentSocket(t, k.dir, (sock) => sock.once('data', () => sock.write(Buffer.from([0, 0, 0, 1, 99])))));
    await assert.rejects(wrongType.list(), { code: 'ERR_POSTERN_AGENT_PROTOCOL' });
    const failing = socketAgent(await fakeAgentSocket(t, k.dir, (sock) => sock.once('data', () => sock.write(Buffer.from([0, 0, 0, 1, 5])))));
    await assert.rejects(failing.list(), { code: 'ERR_POSTERN_AGENT_FAILURE' });
  });

  await t.test('an opener that fails or never opens fails the request', async () => {
    const broken = new ForwardedAgent(() => Promise.reject(Object.assign(new Error('no agent'), { code: 'ERR_TEST' })));
    await assert.rejects(broken.list(), { code: 'ERR_TEST' });
    await assert.rejects(new Promise((resolve, reject) => broken.getIdentities((err, keys) => (err ? reject(err) : resolve(keys)))), { code: 'ERR_TEST' });
    const neverOpens = new ForwardedAgent(() => new Promise(() => undefined), { timeoutMs: 100 });
    await assert.rejects(neverOpens.list(), { code: 'ERR_POSTERN_AGENT_TIMEOUT' });
  });
});

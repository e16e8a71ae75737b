/**
 * `postern ssh` end to end (issue 3, "Client commands" and "Done when" 3): a real
 * `postern serve`, real OpenSSH sshd nodes with host certificates from `postern nodes add`,
 * a real ssh-agent. The node session runs over the proxy's `proxy:` subsystem, SSH inside
 * SSH, so these also prove the proxy carries bytes it cannot read.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestCluster, userFiles } from '../helpers/cluster.ts';
import { runPostern, POSTERN_BIN } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { roundTrip } from '../helpers/net.ts';
import { startSshd, startAgent, LOCAL_USER } from '../helpers/openssh.ts';
import type { Sshd, Agent } from '../helpers/openssh.ts';

const c = new TestCluster();
let home: string;
let agent: Agent;
const nodes = new Map<string, Sshd>();

function env(extra: Record<string, string> = {}): Record<string, string> {
  return { TSH_HOME: home, SSH_AUTH_SOCK: agent.socket, USER: LOCAL_USER, ...extra };
}

before(async () => {
  await c.start();
  home = await c.user('alice', LOCAL_USER, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  // The login's key and certificate in a real agent, the way ssh-add loads KEY with KEY-cert.pub.
  agent = await startAgent();
  c.onStop(() => agent.stop());
  const f = userFiles(home, 'alice');
  const idDir = mkdtempSync(join(tmpdir(), 'postern-id-'));
  copyFileSync(f.key, join(idDir, 'id'));
  copyFileSync(f.cert, join(idDir, 'id-cert.pub'));
  execFileSync('ssh-add', [join(idDir, 'id')], { env: { ...process.env, SSH_AUTH_SOCK: agent.socket }, stdio: 'pipe' });

  nodes.set('web1', await c.node('web1', 'env=prod,team=web'));
  nodes.set('web2', await c.node('web2', 'env=prod,team=api'));
  // Registered, but its sshd presents only its plain host key.
  const rogue = await c.node('rogue', 'env=dev', { start: false });
  const rogueSshd = await startSshd({ trustedUserCaKeys: (await c.admin(['ca', 'export', '--type', 'user'])).stdout, hostKey: { privatePath: rogue.hostKey }, port: rogue.port });
  c.onStop(() => rogueSshd.stop());
  nodes.set('rogue', rogueSshd);
  // Registered at web2's address: web2 answers with a certificate for web2, not for this name.
  const impDir = mkdtempSync(join(tmpdir(), 'postern-imposter-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(impDir, 'key')]);
  const imp = await c.admin(['nodes', 'add', '--name', 'imposter', '--addr', `127.0.0.1:${nodes.get('web2')!.port}`, '--labels', 'env=stage',
    '--host-key-file', join(impDir, 'key.pub'), '--out', impDir]);
  assert.equal(imp.code, 0, imp.stdout + imp.stderr);
});

after(async () => {
  await c.stop();
});

function ssh(args: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<CliResult> {
  return runPostern(['ssh', ...args], { env: { ...env(), ...opts.env }, ...(opts.input !== undefined ? { input: opts.input } : {}) });
}

/** What went wrong, with the logs of every node and of serve. */
function logs(r: CliResult): string {
  return `${r.stdout}\n${r.stderr}\n${[...nodes].map(([n, s]) => `--- sshd ${n} ---\n${s.log()}`).join('\n')}\n--- serve ---\n${c.serve.stderr().slice(-4000)}`;
}

const L = LOCAL_USER;

test('postern ssh LOGIN@web1 runs a command: its output, its exit status, words after the destination are the command\'s', async () => {
  const exit3 = await ssh([`${L}@web1`, 'exit 3']);
  assert.equal(exit3.code, 3, logs(exit3));
  const hi = await ssh([`${L}@web1`, 'echo', 'hi']);
  assert.equal(hi.code, 0, logs(hi));
  assert.equal(hi.stdout, 'hi\n');
  // -n belongs to echo, -l to the remote command, not to postern ssh.
  const words = await ssh(['-l', L, 'web1', 'echo', '-n', 'a', '-l', 'b']);
  assert.equal(words.code, 0, logs(words));
  assert.equal(words.stdout, 'a -l b');
  // stdout and stderr stay apart; stdin reaches the command.
  const streams = await ssh([`${L}@web1.test.example`, 'cat; echo to-stderr >&2'], { input: 'from-stdin\n' });
  assert.equal(streams.code, 0, logs(streams));
  assert.equal(streams.stdout, 'from-stdin\n');
  assert.equal(streams.stderr, 'to-stderr\n');
  // The node saw the certificate, not a plain key (end to end: sshd checked it itself).
  assert.match(nodes.get('web1')!.log(), /Accepted publickey for \S+ .*ED25519-CERT/);
});

test('-t forces a PTY for a command (and -T refuses one); the session says when it closed', async () => {
  const t = await ssh(['-t', `${L}@web1`, 'tty; echo "TERM=$TERM"'], { env: { TERM: 'xterm-postern' } });
  assert.equal(t.code, 0, logs(t));
  assert.match(t.stdout, /^\/dev\/pts\/\d+\r?\n/);
  assert.match(t.stdout, /TERM=xterm-postern/);
  assert.match(t.stderr, /Connection to web1 closed\./);
  const notty = await ssh(['-T', `${L}@web1`, 'tty']);
  assert.equal(notty.code, 1, logs(notty));
  assert.match(notty.stdout, /not a tty/);
});

test('an interactive shell with no terminal: no PTY, commands from stdin, exit status of the shell', async () => {
  const r = await ssh([`${L}@web1`], { input: 'echo in-shell\nexit 6\n' });
  assert.equal(r.code, 6, logs(r));
  assert.match(r.stdout, /in-shell/);
  assert.match(r.stderr, /Pseudo-terminal will not be allocated because stdin is not a terminal/);
});

test('postern ssh LOGIN@env=prod runs on every matching node, lines prefixed, streams apart, first non-zero status', async () => {
  const r = await ssh([`${L}@env=prod`, 'hostname; echo "port ${SSH_CONNECTION##* }"; echo oops >&2']);
  assert.equal(r.code, 0, logs(r));
  const host = execFileSync('hostname').toString().trim();
  const out = r.stdout.split('\n').filter(Boolean).sort();
  assert.deepEqual(out, [
    `[web1] ${host}`, `[web1] port ${nodes.get('web1')!.port}`,
    `[web2] ${host}`, `[web2] port ${nodes.get('web2')!.port}`,
  ].sort());
  assert.deepEqual(r.stderr.split('\n').filter(Boolean).sort(), ['[web1] oops', '[web2] oops']);
  assert.ok(!r.stdout.includes('rogue') && !r.stdout.includes('imposter'), 'only env=prod nodes');

  const status = await ssh([`${L}@env=prod`, `[ "\${SSH_CONNECTION##* }" = ${nodes.get('web2')!.port} ] && exit 5; exit 0`]);
  assert.equal(status.code, 5, logs(status));
  const narrowed = await ssh([`${L}@env=prod,team=api`, 'echo only']);
  assert.equal(narrowed.code, 0, logs(narrowed));
  assert.equal(narrowed.stdout, '[web2] only\n');
  const none = await ssh([`${L}@env=nowhere`, 'true']);
  assert.equal(none.code, 1, logs(none));
  assert.match(none.stderr, /error: no node you may reach matches env=nowhere/);
});

test('a node with an unknown host key is refused (255), and so is a certificate for another name', async () => {
  const rogue = await ssh([`${L}@rogue`, 'echo', 'should-not-run']);
  assert.equal(rogue.code, 255, logs(rogue));
  assert.equal(rogue.stdout, '');
  assert.match(rogue.stderr, /^error: refusing node "rogue": it presented a plain host key \(ssh-ed25519 SHA256:\S+\) and no host certificate of the cluster/m);
  assert.match(rogue.stderr, /hint: A node must present the host certificate/);
  assert.doesNotMatch(nodes.get('rogue')!.log(), /Accepted publickey/, 'the client stopped before authenticating');

  const imposter = await ssh([`${L}@imposter`, 'true']);
  assert.equal(imposter.code, 255, logs(imposter));
  assert.match(imposter.stderr, /error: refusing node "imposter": its host certificate is for web2, web2\.test\.example, 127\.0\.0\.1, not for "imposter" or "imposter\.test\.example"/);
});

test('a login not in the certificate, and a node that is not registered, fail with 255 and say why', async () => {
  const login = await ssh(['nobody-here@web1', 'true']);
  assert.equal(login.code, 255, logs(login));
  assert.match(login.stderr, /error: login "nobody-here" is not in your certificate/);
  assert.match(login.stderr, new RegExp(`error: login "nobody-here" is not in your certificate \\(it allows: ${L}\\)`));
  assert.match(login.stderr, /hint: Connect as one of those logins/);
  const unknown = await ssh([`${L}@no-such-node`, 'true']);
  assert.equal(unknown.code, 255, logs(unknown));
  assert.match(unknown.stderr, /^error: .*no-such-node/m);
});

/** A TCP echo server on 127.0.0.1. */
async function echoServer(): Promise<{ port: number; server: Server }> {
  const server = createServer((s) => s.pipe(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  c.onStop(() => new Promise((r) => server.close(r)));
  const a = server.address();
  return { port: typeof a === 'object' && a ? a.port : 0, server };
}

/** Starts `postern ssh ARGS` in the background; resolves on a stderr line that matches. */
function background(args: string[], ready: RegExp): Promise<{ match: RegExpExecArray; stop(): Promise<{ code: number | null; stderr: string }> }> {
  const child = spawn(process.execPath, [POSTERN_BIN, 'ssh', ...args], { env: { ...process.env, NO_COLOR: '1', POSTERN_FROM_SOURCE: '1', ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  c.onStop(async () => { child.kill('SIGKILL'); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`postern ssh ${args.join(' ')}: no ${ready} in time\n${stderr}`)); }, 30_000);
    child.stdout.resume();
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = ready.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({ match: m, async stop() { child.kill('SIGTERM'); return { code: await exited, stderr }; } });
      }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`postern ssh exited with ${code}\n${stderr}`)); });
  });
}

test('-L forwards a local port through the node to a TCP server; -N keeps it until SIGTERM', async () => {
  const echo = await echoServer();
  const fwd = await background(['-N', '-L', `0:127.0.0.1:${echo.port}`, `${L}@web1`], /Allocated port (\d+) for local forward/);
  const local = Number(fwd.match[1]);
  const data = randomBytes(1024 * 1024);
  const back = await roundTrip(local, data);
  assert.ok(back.equals(data), 'the bytes came back intact through the node');
  const second = await roundTrip(local, Buffer.from('again\n'));
  assert.equal(second.toString(), 'again\n', 'a second connection through the same forward');
  const end = await fwd.stop();
  assert.equal(end.code, 255, end.stderr); // OpenSSH exits 255 when a signal ends it
  assert.match(nodes.get('web1')!.log(), /direct-tcpip|Accepted publickey/);
});

test('-R forwards a port on the node back to a TCP server here', async () => {
  const echo = await echoServer();
  const fwd = await background(['-N', '-R', `0:127.0.0.1:${echo.port}`, `${L}@web1`], /Allocated port (\d+) for remote forward/);
  // The node is this machine: its loopback port is reachable from here.
  const back = await roundTrip(Number(fwd.match[1]), Buffer.from('through the node and back\n'));
  assert.equal(back.toString(), 'through the node and back\n');
  await fwd.stop();
});

test('-A forwards the agent: ssh-add -l on the node lists the certificate; without -A there is no agent', async () => {
  const withAgent = await ssh(['-A', `${L}@web1`, 'ssh-add', '-l']);
  assert.equal(withAgent.code, 0, logs(withAgent));
  assert.match(withAgent.stdout, /SHA256:\S+ alice@test\.example \(ED25519-CERT\)/);
  const without = await ssh([`${L}@web1`, 'ssh-add -l; echo "status $?"'], { env: { SSH_AUTH_SOCK: '' } });
  assert.equal(without.code, 0, logs(without));
  assert.match(without.stdout, /status 2/, 'ssh-add exits 2 when it cannot reach an agent');
});

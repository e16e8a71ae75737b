/**
 * Recording proxy mode with the real OpenSSH client and real sshd nodes. With
 * `session_recording: proxy`, `ssh -A` through `postern proxy ssh`, `ssh -A -J` and
 * `postern ssh -A` run commands and shells with strict host key checking; each is recorded
 * and `postern play` shows it (asciinema reads the cast); without agent forwarding a clear
 * message and exit 255; a port forward through the node; `join` as observer and peer; a
 * proxy killed with SIGKILL mid-session leaves the output sent before it; the audit log.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { TestCluster, addToAgent, proxyCommandLine, userSshConfig } from '../helpers/cluster.ts';
import { runPostern, POSTERN_BIN } from '../helpers/cli.ts';
import { startServe } from '../helpers/serve.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { boundPort, PortInUseError, withFreshPort } from '../helpers/net.ts';
import { waitFor, waitForText as until } from '../helpers/wait.ts';
import type { RecordingMeta } from '../../src/api/types.ts';

const c = new TestCluster();
let alice: string;
let bob: string;
let agentSock: string;
let cfgA: string;
let echo: Server;
let echoPort: number;

/** ssh_config for alice: her key and certificate, strict host keys, and `lines`. */
function sshConfig(name: string, lines: string[]): string {
  return userSshConfig(join(c.work, `ssh_config_${name}`), alice, 'alice', lines);
}
const sshEnv = (): NodeJS.ProcessEnv => ({ ...process.env, SSH_AUTH_SOCK: agentSock });

function ssh(args: string[], input?: string) {
  return spawnSync('ssh', args, { encoding: 'utf8', timeout: 120_000, env: sshEnv(), ...(input !== undefined ? { input } : {}) });
}

async function recordings(home: string): Promise<RecordingMeta[]> {
  const r = await runPostern(['recordings', 'ls', '--format', 'json'], { env: { TSH_HOME: home } });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as RecordingMeta[];
}

/** The newest recording of alice whose text holds `needle`, waiting for the chunk with it to reach auth. */
async function recordingWith(needle: string): Promise<{ meta: RecordingMeta; text: string }> {
  return waitFor(async () => {
    for (const meta of (await recordings(alice)).slice(0, 5)) {
      const play = await runPostern(['play', meta.id, '--format', 'text'], { env: { TSH_HOME: alice } });
      if (play.code === 0 && play.stdout.includes(needle)) return { meta, text: play.stdout };
    }
    return undefined;
  }, { what: `a recording that holds ${needle}`, timeoutMs: 30_000, intervalMs: 250 });
}

/** Sends `text` to 127.0.0.1:port and resolves with the first reply. */
function echoThrough(port: number, text: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.write(text));
    sock.on('data', (d) => { resolve(d.toString()); sock.end(); });
    sock.on('error', reject);
    setTimeout(() => reject(new Error(`no reply through the forward on port ${port}`)), 30_000).unref();
  });
}

/**
 * `ssh -J` to web1 with a port forward (`-L` or `-R`) to the echo server, running until it
 * printed `ready`. ssh must be told the forward's port, so when that port was taken (ssh
 * exits: ExitOnForwardFailure) it starts again on another.
 */
function forward(flag: '-L' | '-R', ready: string): Promise<{ proc: ChildProcessWithoutNullStreams; port: number; out: () => string }> {
  return withFreshPort(async (port) => {
    const proc = spawn('ssh', ['-F', cfgA, '-o', 'ExitOnForwardFailure yes', flag, `${port}:127.0.0.1:${echoPort}`, '-J', `alice@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web1`, `echo ${ready}; sleep 20`], { env: sshEnv() });
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    let exited = false;
    proc.once('exit', () => { exited = true; });
    await waitFor(() => {
      if (out.includes(ready)) return true;
      if (!exited) return false;
      // ssh's words for a port it could not listen on, here (-L) or on the node (-R).
      if (/Address already in use|forwarding failed for listen port/.test(out)) throw new PortInUseError(out);
      throw new Error(`ssh ${flag} exited before ${ready}\nssh: ${out}\nserve: ${c.serve.stderr().slice(-3000)}`);
    }, { what: ready, timeoutMs: 60_000, detail: () => `ssh: ${out}\nserve: ${c.serve.stderr().slice(-3000)}` });
    return { proc, port, out: () => out };
  });
}

/** A shell on web1 through -J that stays open; its output so far. */
function longShell(cfg: string): { proc: ChildProcessWithoutNullStreams; out: () => string } {
  const proc = spawn('ssh', ['-F', cfg, '-tt', '-J', `alice@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web1`], { env: sshEnv() });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  return { proc, out: () => out };
}

before(async () => {
  await c.start('session_recording: proxy');
  agentSock = await c.agent();
  alice = await c.user('alice', LOCAL_USER, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  bob = await c.user('bob', LOCAL_USER, 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ');
  // alice's key and certificate in her agent, as `postern login` puts them there.
  addToAgent(c, alice, 'alice', agentSock);
  await c.node('web1', 'env=prod');
  cfgA = sshConfig('agent', ['  ForwardAgent yes']);
  echo = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  echoPort = boundPort(echo);
});

after(async () => {
  echo?.close();
  await c.stop();
});

test('ssh -A through postern proxy ssh runs a command on the node, strict host keys pass, and the recording plays', async () => {
  const cfg = sshConfig('pc', ['  ForwardAgent yes', proxyCommandLine(alice)]);
  const r = ssh(['-F', cfg, `${LOCAL_USER}@web1.test.example`, 'echo', 'rec-pc-$((6*7))']);
  assert.equal(r.status, 0, r.stderr + c.serve.stderr().slice(-3000));
  assert.equal(r.stdout.trim(), 'rec-pc-42');
  const { meta, text } = await recordingWith('rec-pc-42');
  assert.equal(meta.kind, 'exec');
  assert.equal(meta.login, LOCAL_USER);
  assert.match(meta.command ?? '', /echo rec-pc/);
  assert.match(text, /rec-pc-42/);
  assert.equal(r.stderr.includes('WARNING'), false, r.stderr);

  const shell = ssh(['-F', cfg, '-tt', `${LOCAL_USER}@web1.test.example`], 'echo pc-shell-$((50+5))-ok; exit 4\n');
  assert.equal(shell.status, 4, shell.stderr);
  assert.match(shell.stdout, /pc-shell-55-ok/);
  assert.equal((await recordingWith('pc-shell-55-ok')).meta.kind, 'shell');
});

test('ssh -A -J through the listener: a command with its exit status, and an interactive shell with a PTY', async () => {
  const cmd = ssh(['-F', cfgA, '-J', `alice@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web1`, 'echo jump-ok; exit 3']);
  assert.equal(cmd.status, 3, cmd.stderr);
  assert.equal(cmd.stdout.trim(), 'jump-ok');
  // The node's agent requests travel back through the proxy to the client's agent.
  const agentOnNode = ssh(['-F', cfgA, '-J', `alice@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web1`, 'ssh-add -L']);
  assert.equal(agentOnNode.status, 0, agentOnNode.stderr);
  assert.match(agentOnNode.stdout, /-cert-v01@openssh\.com /);
  const shell = ssh(['-F', cfgA, '-tt', '-J', `alice@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web1`], 'echo shell-$((40+2))-ok; tput cols; exit\n');
  assert.equal(shell.status, 0, shell.stderr);
  assert.match(shell.stdout, /shell-42-ok/);
  const { meta } = await recordingWith('shell-42-ok');
  assert.equal(meta.kind, 'shell');
});

test('postern ssh -A runs a command in recording mode; without -A it gets the message and 255', async () => {
  const ok = await runPostern(['ssh', '-A', `${LOCAL_USER}@web1`, 'echo', 'pssh-rec-ok'], { env: { TSH_HOME: alice, SSH_AUTH_SOCK: agentSock } });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), 'pssh-rec-ok');
  await recordingWith('pssh-rec-ok');
  const shell = await runPostern(['ssh', '-A', '-t', `${LOCAL_USER}@web1`], { env: { TSH_HOME: alice, SSH_AUTH_SOCK: agentSock }, input: 'echo pssh-shell-$((60+6))-ok; exit\n' });
  assert.equal(shell.code, 0, shell.stderr);
  assert.match(shell.stdout, /pssh-shell-66-ok/);
  assert.equal((await recordingWith('pssh-shell-66-ok')).meta.kind, 'shell');
  const t0 = Date.now();
  const no = await runPostern(['ssh', `${LOCAL_USER}@web1`, 'echo', 'never'], { env: { TSH_HOME: alice, SSH_AUTH_SOCK: agentSock } });
  assert.equal(no.code, 255);
  assert.match(no.stderr, /needs agent forwarding/);
  assert.match(no.stderr, /postern ssh -A/);
  assert.ok(Date.now() - t0 < 30_000, 'no hang');
});

test('without agent forwarding OpenSSH gets a clear message, exit 255, and no hang', () => {
  const cfg = sshConfig('noagent', ['  ForwardAgent no']);
  const t0 = Date.now();
  const r = ssh(['-F', cfg, '-J', `alice@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web1`, 'echo', 'never']);
  assert.equal(r.status, 255);
  assert.match(r.stderr, /needs agent forwarding/);
  assert.match(r.stderr, /ssh -A/);
  assert.equal(r.stdout, '');
  assert.ok(Date.now() - t0 < 30_000, 'no hang');
});

test('a local port forward (-L) goes through the node; the cast of a recording plays in asciinema', async () => {
  const fwd = await forward('-L', 'fwd-ready');
  try {
    assert.equal(await echoThrough(fwd.port, 'ping-through-node'), 'ping-through-node');
  } catch (err) {
    throw new Error(`${(err as Error).message}\nssh: ${fwd.out()}\nserve: ${c.serve.stderr().slice(-3000)}\nnode: ${c.nodes.get('web1')!.log().slice(-2000)}`);
  } finally {
    fwd.proc.kill();
  }
  // -R: the node listens (its sshd runs on this machine), each connection comes back to the client.
  const rfwd = await forward('-R', 'rfwd-ready');
  const remote = rfwd.port;
  try {
    assert.equal(await echoThrough(remote, 'pong-from-the-node-side'), 'pong-from-the-node-side');
  } catch (err) {
    throw new Error(`${(err as Error).message}\nssh: ${rfwd.out()}\nserve: ${c.serve.stderr().slice(-3000)}`);
  } finally {
    rfwd.proc.kill();
  }
  const audit = JSON.parse((await c.admin(['audit', '--type', 'port.forward', '--format', 'json'])).stdout) as Array<{ user: string; port: number; success: boolean; direction?: string }>;
  assert.ok(audit.some((e) => e.user === 'alice' && e.port === echoPort && e.success), JSON.stringify(audit));
  assert.ok(audit.some((e) => e.user === 'alice' && e.port === remote && e.direction === 'remote' && e.success), JSON.stringify(audit));

  const made = ssh(['-F', cfgA, '-J', `alice@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web1`, 'echo cast-$((2*21))-ok']);
  assert.equal(made.status, 0, made.stderr);
  const { meta } = await recordingWith('cast-42-ok');
  const cast = await runPostern(['play', meta.id, '--format', 'cast'], { env: { TSH_HOME: alice } });
  assert.equal(cast.code, 0, cast.stderr);
  const file = join(c.work, 'rec.cast');
  writeFileSync(file, cast.stdout);
  // asciinema cat reads /dev/tty: it runs on a pseudo-terminal from script(1).
  const cat = spawnSync('script', ['-qfec', `asciinema cat ${file}`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8', TERM: 'xterm' }, timeout: 30_000 });
  assert.equal(cat.status, 0, cat.stderr);
  assert.match(cat.stdout, /cast-42-ok/);
});

test('join: an observer sees live output and cannot type; a peer types into the shell; bob may not join', async () => {
  const sh = longShell(cfgA);
  try {
    sh.proc.stdin.write('echo owner-$((1+1))-here\n');
    await until(sh.out, 'owner-2-here');
    const ls = await runPostern(['sessions', 'ls', '--format', 'json'], { env: { TSH_HOME: alice } });
    assert.equal(ls.code, 0, ls.stderr);
    const live = (JSON.parse(ls.stdout) as Array<{ id: string; user: string; node: string; kind: string }>).filter((s) => s.user === 'alice' && s.kind === 'ssh').at(-1);
    assert.ok(live, ls.stdout);
    assert.equal(live.node, 'web1');

    const observer = spawn(process.execPath, [POSTERN_BIN, 'join', live.id, '--mode', 'observer'], { env: { ...process.env, TSH_HOME: alice, POSTERN_FROM_SOURCE: '1' } });
    let seen = '';
    let notes = '';
    observer.stdout.on('data', (d) => { seen += d; });
    observer.stderr.on('data', (d) => { notes += d; });
    await until(() => notes, /joined session/);
    observer.stdin.write('echo observer-typed-this\n');
    sh.proc.stdin.write('echo live-$((2+3))-out\n');
    await until(() => seen, 'live-5-out');
    await until(sh.out, /alice joined as observer/);

    const peer = spawn(process.execPath, [POSTERN_BIN, 'join', live.id, '--mode', 'peer'], { env: { ...process.env, TSH_HOME: alice, POSTERN_FROM_SOURCE: '1' } });
    let peerNotes = '';
    peer.stderr.on('data', (d) => { peerNotes += d; });
    await until(() => peerNotes, /joined session/);
    peer.stdin.write('echo peer-$((3+4))-typed\n');
    await until(sh.out, 'peer-7-typed');
    await until(() => seen, 'peer-7-typed');
    assert.equal(sh.out().includes('observer-typed-this'), false, 'an observer\'s keys never reach the shell');

    // The exec the CLI sends, from plain OpenSSH with alice's certificate: the same stream.
    const plain = spawn('ssh', ['-F', cfgA, '-T', '-p', String(c.sshPort), 'alice@127.0.0.1', `join ${live.id} observer`], { env: sshEnv() });
    let plainOut = '';
    let plainErr = '';
    plain.stdout.on('data', (d) => { plainOut += d; });
    plain.stderr.on('data', (d) => { plainErr += d; });
    await until(() => plainErr, /joined session/);
    sh.proc.stdin.write('echo plain-$((4+4))-seen\n');
    await until(() => plainOut, 'plain-8-seen');
    const unknown = ssh(['-F', cfgA, '-T', '-p', String(c.sshPort), 'alice@127.0.0.1', 'join NoSuchSession0 observer']);
    assert.equal(unknown.status, 1, unknown.stderr);
    assert.match(unknown.stderr, /error: /);

    const denied = await runPostern(['join', live.id, '--mode', 'observer'], { env: { TSH_HOME: bob } });
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /may not join the session of alice/);

    sh.proc.stdin.write('exit\n');
    const [oc, pc, sc] = await Promise.all([observer, peer, plain].map((p) => new Promise((r) => p.once('exit', r))));
    assert.equal(oc, 0);
    assert.equal(pc, 0);
    assert.equal(sc, 0, plainErr);
    const audit = JSON.parse((await c.admin(['audit', '--type', 'session.join', '--format', 'json'])).stdout) as Array<{ user: string; success: boolean; mode: string; owner?: string }>;
    assert.ok(audit.some((e) => e.user === 'alice' && e.success && e.mode === 'observer'));
    assert.ok(audit.some((e) => e.user === 'alice' && e.success && e.mode === 'peer'));
    assert.ok(audit.some((e) => e.user === 'bob' && !e.success));
  } finally {
    sh.proc.kill();
  }
});

test('a peer typing after the owner\'s input ended (EOF) does not break the proxy', async () => {
  const sh = longShell(cfgA);
  try {
    // The shell outlives the owner's input until the peer has typed: it waits (at most 60 s) for
    // a file the test makes then (the node's sshd runs on this machine).
    const go = join(c.work, 'eof-owner-go');
    sh.proc.stdin.end(`echo eof-owner-ready; i=0; while [ ! -e ${go} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo eof-owner-$((9*9)); exit\n`);
    await until(sh.out, 'eof-owner-ready');
    const ls = await runPostern(['sessions', 'ls', '--format', 'json'], { env: { TSH_HOME: alice } });
    const live = (JSON.parse(ls.stdout) as Array<{ id: string; user: string; kind: string }>).filter((s) => s.user === 'alice' && s.kind === 'ssh').at(-1);
    assert.ok(live, ls.stdout);
    const peer = spawn('ssh', ['-F', cfgA, '-T', '-p', String(c.sshPort), 'alice@127.0.0.1', `join ${live.id} peer`], { env: sshEnv() });
    let peerErr = '';
    peer.stderr.on('data', (d) => { peerErr += d; });
    await until(() => peerErr, /joined session/);
    await new Promise((r) => peer.stdin.write('echo too-late\n', r));
    writeFileSync(go, '');
    await until(sh.out, 'eof-owner-81');
    const exited = (p: ChildProcessWithoutNullStreams): Promise<number | null> => new Promise((r, j) => {
      if (p.exitCode !== null) return r(p.exitCode);
      p.once('exit', r);
      setTimeout(() => j(new Error(`no exit in time; owner: ${sh.out().slice(-500)} peer: ${peerErr}`)), 30_000).unref();
    });
    assert.equal(await exited(sh.proc), 0, sh.out());
    await exited(peer);
    // The proxy still serves.
    const again = ssh(['-F', cfgA, '-J', `alice@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web1`, 'echo still-serving']);
    assert.equal(again.status, 0, again.stderr + c.serve.stderr().slice(-3000));
    assert.equal(again.stdout.trim(), 'still-serving');
  } finally {
    sh.proc.kill();
  }
});

test('kill -9 of the proxy mid-session: the recording holds the output sent before; the audit log has the sessions', async () => {
  const sh = longShell(cfgA);
  sh.proc.stdin.write('echo before-kill-$((5*5))\n');
  await until(sh.out, 'before-kill-25');
  // Until the chunk with that output has gone to auth (the recorder flushes on an interval).
  await recordingWith('before-kill-25');
  const args = ['--web-addr', c.serve.web, '--auth-addr', c.serve.auth, '--ssh-addr', `127.0.0.1:${c.sshPort}`, '--cluster-name', 'test.example', '--config', join(c.work, 'postern.yaml')];
  await c.serve.kill();
  sh.proc.kill();
  c.serve = await startServe({ dataDir: c.serve.dataDir, args });
  const { meta, text } = await recordingWith('before-kill-25');
  assert.equal(meta.status, 'incomplete');
  assert.match(text, /before-kill-25/);

  const events = JSON.parse((await c.admin(['audit', '--user', 'alice', '--format', 'json'])).stdout) as Array<{ type: string; user: string; success: boolean }>;
  const types = new Set(events.map((e) => e.type));
  for (const t of ['session.start', 'session.end', 'session.exec', 'session.join', 'recording.start']) assert.ok(types.has(t), `${t} in ${[...types].join(', ')}`);
  assert.ok(events.some((e) => e.type === 'session.start' && e.success === false), 'the refused start without agent forwarding');
});

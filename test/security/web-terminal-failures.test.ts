/**
 * A failed web terminal leaks nothing toward the node. A real auth (SQLite),
 * a real proxy (startProxy) and a real sshd node with the host certificate auth issued; the
 * browser is a websocket client with a web session's cookie. Each failure path is driven and
 * then the node's side is counted: the TCP connections established to sshd (from
 * /proc/net/tcp), polled until there are none. The paths: the recording cannot start (the
 * issue's disk full: six refused terminals left six shells), the browser goes away while the
 * node authenticates and while the recording starts, the node refuses the login, auth's agent
 * fails mid-way, the browser goes away from a running shell, and the proxy shuts down with a
 * shell open (everyone is told, the node connection closes, close() ends within its bound).
 * Races (a browser gone at a step) run REPS times each. Only the failures are injected, by a
 * thin wrapper of the proxy's AuthClient; everything else is the real thing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { openSqliteBackend } from '../../src/storage/sqlite.ts';
import type { Backend } from '../../src/storage/backend.ts';
import { AuthServer, localAuthClient } from '../../src/auth/auth-server.ts';
import type { AuthClient } from '../../src/api/auth-client.ts';
import { totpCode, newTotpSecret } from '../../src/auth/totp.ts';
import { startProxy, SHUTDOWN_STEP_MS } from '../../src/proxy/proxy-service.ts';
import type { RunningProxy } from '../../src/proxy/proxy-service.ts';
import { SESSION_COOKIE } from '../../src/proxy/web-auth.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { startSshd, LOCAL_USER } from '../helpers/openssh.ts';
import type { Sshd } from '../helpers/openssh.ts';
import { establishedOn, withFreshPort } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';
import { TEST_SCRYPT_LOG2N } from '../helpers/auth.ts';

const REPS = Number(process.env.POSTERN_TEST_REPS ?? 30);
const PASSWORD = 'correct horse battery staple';
const work = mkdtempSync(join(tmpdir(), 'postern-wtfail-'));
let backend: Backend;
let sshd: Sshd;
let proxy: RunningProxy;
let sessionId: string;
let secret: string;
let admin: AuthClient;

/** What the wrapper of the proxy's AuthClient does now: fail or hold a call. */
const inject: {
  failRecording?: boolean;
  failAgent?: boolean;
  /** Called when the named call starts; the call waits for the promise it returns. */
  hold?: { call: 'webSessionAgent' | 'startRecording'; reached: () => void; release: Promise<void> };
} = {};

function wrap(real: AuthClient): AuthClient {
  const w = Object.create(null) as Record<string, unknown>;
  for (const k of Object.keys(real) as Array<keyof AuthClient>) {
    w[k] = async (arg: unknown) => {
      const h = inject.hold;
      if (h && h.call === k) { inject.hold = undefined; h.reached(); await h.release; }
      if (k === 'startRecording' && inject.failRecording) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      if (k === 'webSessionAgent' && inject.failAgent) throw new Error('auth went away');
      return (real[k] as (a: unknown) => Promise<unknown>)(arg);
    };
  }
  return w as unknown as AuthClient;
}

/** TCP connections established to the node's sshd (its side of them). */
function nodeConnections(): number {
  return establishedOn(sshd.port);
}

async function noNodeConnections(what: string): Promise<void> {
  await waitFor(() => nodeConnections() === 0, { what: `no connection left to the node after ${what}`, timeoutMs: 30_000, detail: () => `${nodeConnections()} open\n${sshd.log().slice(-2000)}` });
}

interface Term { ws: WebSocket; messages: Array<Record<string, unknown>>; output: () => string; closed: Promise<number> }

/** Opens the web terminal as the browser does. */
function terminal(login = LOCAL_USER, node = 'web1'): Term {
  const origin = `https://127.0.0.1:${proxy.webPort}`;
  const ws = new WebSocket(`wss://127.0.0.1:${proxy.webPort}/webapi/terminal?node=${node}&login=${login}&cols=80&rows=24`, {
    rejectUnauthorized: false, headers: { cookie: `${SESSION_COOKIE}=${sessionId}`, origin },
  });
  const messages: Array<Record<string, unknown>> = [];
  let out = '';
  ws.on('message', (d: Buffer, binary: boolean) => { if (binary) out += d.toString('utf8'); else messages.push(JSON.parse(d.toString('utf8')) as Record<string, unknown>); });
  ws.on('error', () => {});
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  return { ws, messages, output: () => out, closed };
}

function holdAt(call: 'webSessionAgent' | 'startRecording'): { reached: Promise<void>; release: () => void } {
  let reached!: () => void;
  let release!: () => void;
  const r = new Promise<void>((res) => { reached = res; });
  inject.hold = { call, reached, release: new Promise<void>((res) => { release = res; }) };
  return { reached: r, release };
}

before(async () => {
  backend = await openSqliteBackend({ dataDir: join(work, 'data') });
  const auth = await AuthServer.open({ backend, clock: { now: () => new Date() }, clusterName: 'c.example', passwordCost: TEST_SCRYPT_LOG2N });
  admin = localAuthClient(auth, { role: 'admin', name: 'admin' });
  const real = localAuthClient(auth, { role: 'proxy', name: 'p1' });
  await admin.updateSettings({ session_recording: 'off' });
  const inv = await admin.createUser({ name: 'alice', logins: [LOCAL_USER, 'nosuchlogin'], roles: ['access'], inviteTtlMs: 60_000 });
  secret = newTotpSecret();
  const now = Date.now();
  await real.acceptInvite({ token: inv.inviteUrl.split('/').pop()!, password: PASSWORD, totpSecret: secret, otp: totpCode(secret, new Date(now - 30_000)), clientAddr: '127.0.0.1' });
  sessionId = (await real.createWebSession({ user: 'alice', password: PASSWORD, otp: totpCode(secret, new Date(now)), clientAddr: '127.0.0.1' })).sessionId;
  const hostKey = join(work, 'ssh_host_ed25519_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  sshd = await withFreshPort(async (port) => {
    const added = await admin.addNode({ name: 'web1', addr: `127.0.0.1:${port}`, labels: {}, hostPublicKey: readFileSync(`${hostKey}.pub`, 'utf8').trim() });
    writeFileSync(`${hostKey}-cert.pub`, added.hostCertificate + '\n');
    try {
      return await startSshd({ trustedUserCaKeys: added.userCaKeys[0]!, hostKey: { privatePath: hostKey, certPath: `${hostKey}-cert.pub` }, port });
    } catch (err) {
      await admin.removeNode({ name: 'web1' });
      throw err;
    }
  });
  proxy = await startProxy({
    name: 'p1', dataDir: join(work, 'proxy'), auth: wrap(real), webAddr: { host: '127.0.0.1', port: 0 }, sshAddr: { host: '127.0.0.1', port: 0 },
    log: silentLogger, clock: { now: () => new Date() },
  });
});
after(async () => {
  await proxy?.close();
  await sshd?.stop();
  await backend?.close();
});

test('a working terminal first: the shell runs, and its connection is counted', async () => {
  const t = terminal();
  await waitFor(() => t.messages.find((m) => m.type === 'session'), { what: 'the session message', detail: () => JSON.stringify(t.messages) });
  t.ws.send(Buffer.from('echo hello-$((6*7))\n'), { binary: true });
  await waitFor(() => t.output().includes('hello-42'), { what: 'the shell\'s answer', detail: t.output });
  assert.equal(nodeConnections(), 1);
  t.ws.close();
  await noNodeConnections('the browser closed a running terminal');
});

test('the recording cannot start (disk full): refused with the reason, and the node connection is closed, every time', async () => {
  inject.failRecording = true;
  try {
    for (let i = 0; i < 6; i++) {
      const t = terminal();
      await t.closed;
      const err = t.messages.find((m) => m.type === 'error');
      assert.ok(err, JSON.stringify(t.messages));
    }
  } finally { inject.failRecording = false; }
  await noNodeConnections('six terminals whose recording failed');
});

test(`the browser goes away while the node authenticates (${REPS} runs)`, async () => {
  for (let i = 0; i < REPS; i++) {
    const h = holdAt('webSessionAgent');
    const t = terminal();
    await h.reached;
    assert.equal(nodeConnections(), 1, 'the node is dialled and authenticating');
    t.ws.terminate();
    await t.closed;
    h.release();
    await noNodeConnections(`a browser gone during authentication (run ${i + 1})`);
  }
});

test(`the browser goes away while the recording starts (${REPS} runs): no session is left either`, async () => {
  for (let i = 0; i < REPS; i++) {
    const h = holdAt('startRecording');
    const t = terminal();
    await h.reached;
    t.ws.terminate();
    await t.closed;
    h.release();
    await noNodeConnections(`a browser gone while the recording started (run ${i + 1})`);
  }
  await waitFor(async () => (await admin.listActiveSessions({})).length === 0, { what: 'no live session left at auth', timeoutMs: 30_000 });
});

test('the node refuses the login, and auth\'s agent fails mid-way: refused, nothing left open', async () => {
  const refused = terminal('nosuchlogin');
  await refused.closed;
  assert.match(JSON.stringify(refused.messages), /"type":"error"/);
  await noNodeConnections('a login the node refused');
  inject.failAgent = true;
  try {
    const t = terminal();
    await t.closed;
    assert.match(JSON.stringify(t.messages), /"type":"error"/);
  } finally { inject.failAgent = false; }
  await noNodeConnections('an agent that failed');
});

test(`a running shell whose browser vanishes (${REPS} runs)`, async () => {
  for (let i = 0; i < REPS; i++) {
    const t = terminal();
    await waitFor(() => t.messages.find((m) => m.type === 'session'), { what: 'the session message', detail: () => JSON.stringify(t.messages) });
    t.ws.terminate();
    await noNodeConnections(`a vanished browser (run ${i + 1})`);
  }
});

test('the proxy shuts down with shells open: each browser is told, the node connections close, close() ends in bound', async () => {
  const terms = [terminal(), terminal(), terminal()];
  for (const t of terms) await waitFor(() => t.messages.find((m) => m.type === 'session'), { what: 'the session message', detail: () => JSON.stringify(t.messages) });
  assert.equal(nodeConnections(), 3);
  const start = Date.now();
  await proxy.close();
  const ms = Date.now() - start;
  t_diag(`proxy close with 3 open shells: ${ms} ms`);
  assert.ok(ms < 3 * SHUTDOWN_STEP_MS, `close took ${ms} ms`);
  for (const t of terms) {
    await t.closed;
    const exit = t.messages.find((m) => m.type === 'exit');
    assert.equal(exit?.reason, 'the proxy is shutting down', JSON.stringify(t.messages));
  }
  await noNodeConnections('the proxy shut down');
});

function t_diag(s: string): void {
  process.stdout.write(`# ${s}\n`);
}

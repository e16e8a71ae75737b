/**
 * `postern lock` against a real cluster with real sshd nodes and OpenSSH clients: a lock
 * on a user ends their live sessions (ProxyCommand, ssh -J, the TLS tunnel, the web
 * terminal) within seconds, saying why where the surface can; new logins and connections
 * are refused naming the reason; a TTL lock lapses; a node lock stops that node only;
 * `lock rm` restores; `users reset` cuts an open session too. Audited.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { Agent, request } from 'undici';
import { TestCluster, TEST_PASSWORD, userFiles, proxySshConfig } from '../helpers/cluster.ts';
import { runDetached, runPostern } from '../helpers/cli.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { waitFor } from '../helpers/wait.ts';
import { startServe } from '../helpers/serve.ts';

const c = new TestCluster();
const SECRETS: Record<string, string> = {
  alice: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
  bob: 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ',
  carol: 'MFRGGZDFMZTWQ2LKNNWG23TPOA',
};
const homes: Record<string, string> = {};
const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });
/** A lock or a reset must end a live session within this (sweep each second, answers kept 2 s). */
const CUT_DEADLINE_MS = 20_000;

function userEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}`, TSH_HOME: home, POSTERN_FROM_SOURCE: '1', NO_COLOR: '1' };
  delete env.SSH_AUTH_SOCK;
  return env;
}

function jumpConfig(home: string, user: string): string {
  const f = userFiles(home, user);
  const path = join(home, 'ssh_config_jump');
  writeFileSync(path, [
    'Host *', `  IdentityFile ${f.key}`, `  CertificateFile ${f.cert}`, '  IdentitiesOnly yes', '  IdentityAgent none',
    `  UserKnownHostsFile ${f.knownHosts}`, '  StrictHostKeyChecking yes', '  BatchMode yes', '  ConnectTimeout 30', '',
  ].join('\n'));
  return path;
}

/** The ssh command lines of a user, by way in, for a node and a remote command. */
function ways(user: string): Record<string, (node: string, cmd: string[]) => string[]> {
  const home = homes[user];
  return {
    'ProxyCommand over the SSH listener': (node, cmd) => ['-F', proxySshConfig(join(home, 'ssh_config_ssh'), home, user, 'ssh'), `${LOCAL_USER}@${node}`, ...cmd],
    'ssh -J': (node, cmd) => ['-F', jumpConfig(home, user), '-J', `${user}@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@${node}`, ...cmd],
    'TLS tunnel': (node, cmd) => ['-F', proxySshConfig(join(home, 'ssh_config_tls'), home, user, 'tls'), `${LOCAL_USER}@${node}`, ...cmd],
  };
}

/** Runs a command on a node one way; true when it printed what it should. */
async function reaches(user: string, way: string, node: string): Promise<{ ok: boolean; stderr: string }> {
  const r = await runDetached('ssh', ways(user)[way](node, ['echo', `in-${node}`]), userEnv(homes[user]));
  return { ok: r.code === 0 && r.stdout === `in-${node}\n`, stderr: r.stderr };
}

/** A long session: started once it printed "started"; `ended` resolves with how it ended. */
interface LongSession { started: Promise<void>; ended: Promise<{ code: number | null; stderr: string }>; kill(): void }

function longSession(user: string, way: string, node: string): LongSession {
  const child = spawn('ssh', ways(user)[way](node, ['echo started; exec sleep 600']), {
    env: userEnv(homes[user]), cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['pipe', 'pipe', 'pipe'], detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const started = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => { stdout += d; if (stdout.includes('started')) resolve(); });
    child.on('close', (code) => reject(new Error(`${way} session ended before it started (${code}): ${stderr}`)));
  });
  started.catch(() => {});
  const ended = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  return { started, ended, kill: () => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } } };
}

async function web(method: string, path: string, opts: { body?: unknown; cookie?: string } = {}): Promise<{ status: number; json: { error?: { message: string } } | undefined; setCookie: string }> {
  const res = await request(`https://${c.serve.web}${path}`, {
    method: method as 'GET', dispatcher,
    headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(opts.cookie ? { cookie: opts.cookie } : {}) },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? (JSON.parse(text) as { error?: { message: string } }) : undefined, setCookie: String(res.headers['set-cookie'] ?? '') };
}

async function webLogin(user: string): Promise<{ status: number; message?: string; cookie?: string }> {
  const r = await web('POST', '/webapi/sessions/web', { body: { user, password: TEST_PASSWORD, otp: await c.freshCode(user, SECRETS[user]) } });
  const cookie = /(__Host-postern_session=[^;]+)/.exec(r.setCookie)?.[1];
  return { status: r.status, ...(r.json?.error ? { message: r.json.error.message } : {}), ...(cookie ? { cookie } : {}) };
}

/** A web terminal on a node; `ended` resolves with the exit or error frame's text and the close code. */
async function webTerminal(cookie: string, node: string): Promise<{ ended: Promise<{ text: string; code: number }>; close(): void }> {
  const ws = new WebSocket(`wss://${c.serve.web}/webapi/terminal?node=${node}&login=${LOCAL_USER}&cols=80&rows=24`, {
    headers: { origin: `https://${c.serve.web}`, cookie }, rejectUnauthorized: false,
  });
  let screen = '';
  const frames: string[] = [];
  ws.on('message', (d: Buffer, binary: boolean) => { if (binary) screen += d.toString('utf8'); else frames.push(d.toString('utf8')); });
  ws.on('error', () => {});
  const ended = new Promise<{ text: string; code: number }>((resolve) => ws.on('close', (code) => resolve({ text: frames.join('\n'), code })));
  await waitFor(() => frames.some((f) => f.includes('"type":"session"')), { what: 'the web terminal session', detail: () => frames.join('\n') + screen });
  ws.send(Buffer.from('echo web-$((6*7))\r'));
  await waitFor(() => screen.includes('web-42'), { what: 'the web terminal running a command', detail: () => screen });
  return { ended, close: () => ws.close() };
}

async function admin(args: string[]): Promise<string> {
  const r = await c.admin(args);
  assert.equal(r.code, 0, `postern ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function auditTypes(type: string): Promise<Array<Record<string, unknown>>> {
  return JSON.parse(await admin(['audit', '--type', type, '--format', 'json'])) as Array<Record<string, unknown>>;
}

async function withinDeadline<T>(what: string, p: Promise<T>, since: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new Error(`${what} still open ${CUT_DEADLINE_MS / 1000} s after the lock\n${c.serve.stderr().slice(-3000)}`)), CUT_DEADLINE_MS - (Date.now() - since)); });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

before(async () => {
  await c.start();
  for (const u of Object.keys(SECRETS)) homes[u] = await c.user(u, LOCAL_USER, SECRETS[u]);
  await c.node('web1', 'env=prod');
  await c.node('web2', 'env=prod');
});

after(async () => {
  await dispatcher.close();
  await c.stop();
});

test('lock --help documents targets, ttl and examples; bad flags are usage errors', async () => {
  const help = await runPostern(['lock', '--help']);
  assert.equal(help.code, 0);
  for (const s of ['--user <name>', '--role <role>', '--login <login>', '--node <node>', '--reason <text>', '--ttl <duration>', 'postern lock ls', 'lock.created']) assert.ok(help.stdout.includes(s), `help lacks ${s}\n${help.stdout}`);
  const none = await c.admin(['lock', '--reason', 'x']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /error: say what to lock/);
  assert.match(none.stderr, /hint: Give exactly one of --user/);
  const two = await c.admin(['lock', '--user', 'alice', '--node', 'web1']);
  assert.equal(two.code, 2);
  assert.match(two.stderr, /lock one thing at a time, not --user and --node/);
  const ttl = await c.admin(['lock', '--user', 'alice', '--ttl', 'soon']);
  assert.equal(ttl.code, 2);
  assert.match(ttl.stderr, /invalid --ttl "soon"/);
  const bad = await c.admin(['lock', '--login', 'not a login']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid login "not a login" to lock/);
  const rm = await c.admin(['lock', 'rm', 'ffffffff']);
  assert.equal(rm.code, 1);
  assert.match(rm.stderr, /no lock with id ffffffff/);
  const empty = await c.admin(['lock', 'ls', '--format', 'json']);
  assert.deepEqual(JSON.parse(empty.stdout), []);
});

test('a lock with --ttl lapses by itself and access returns', async () => {
  const out = await admin(['lock', '--user', 'bob', '--reason', 'cooling off', '--ttl', '4s']);
  assert.match(out, /^Locked user bob until \S+ \(id [0-9a-f-]{36}\)\.\nTo remove it: {2}postern lock rm /);
  const r = await reaches('bob', 'ssh -J', 'web1');
  assert.equal(r.ok, false);
  await waitFor(async () => (await reaches('bob', 'ssh -J', 'web1')).ok, { what: 'bob\'s access after the lock expired', timeoutMs: 30_000, intervalMs: 500 });
  assert.deepEqual(JSON.parse(await admin(['lock', 'ls', '--format', 'json'])), []);
});

test('a node lock refuses connections to that node only and cuts live ones there', async () => {
  const onWeb1 = longSession('carol', 'ProxyCommand over the SSH listener', 'web1');
  const onWeb2 = longSession('carol', 'ssh -J', 'web2');
  try {
    await onWeb1.started;
    await onWeb2.started;
    const made = JSON.parse(await admin(['lock', '--node', 'web1', '--reason', 'patching', '--format', 'json'])) as { id: string };
    const t0 = Date.now();
    const r = await withinDeadline('the session on web1', onWeb1.ended, t0);
    assert.match(r.stderr, /session terminated: node web1 is locked: patching/);
    for (const w of Object.keys(ways('carol'))) {
      const refused = await reaches('carol', w, 'web1');
      assert.equal(refused.ok, false, `${w} to the locked node`);
      assert.ok((await reaches('carol', w, 'web2')).ok, `${w} to the other node`);
    }
    assert.match((await reaches('carol', 'ProxyCommand over the SSH listener', 'web1')).stderr, /node web1 is locked: patching/);
    assert.equal(await Promise.race([onWeb2.ended.then(() => 'ended'), new Promise((res) => setTimeout(res, 100, 'open'))]), 'open');
    await admin(['lock', 'rm', made.id]);
    await waitFor(async () => (await reaches('carol', 'ssh -J', 'web1')).ok, { what: 'web1 reachable after lock rm', intervalMs: 300 });
  } finally {
    onWeb1.kill();
    onWeb2.kill();
  }
});

test('a login lock refuses that login; a role lock covers everyone holding the role', async () => {
  const byLogin = JSON.parse(await admin(['lock', '--login', LOCAL_USER, '--reason', 'no root today', '--format', 'json'])) as { id: string };
  const refused = await reaches('carol', 'TLS tunnel', 'web2');
  assert.equal(refused.ok, false);
  await admin(['lock', 'rm', byLogin.id]);
  await waitFor(async () => (await reaches('carol', 'TLS tunnel', 'web2')).ok, { what: 'the login usable after lock rm', intervalMs: 300 });

  const byRole = JSON.parse(await admin(['lock', '--role', 'access', '--reason', 'audit week', '--format', 'json'])) as { id: string };
  // Dials are refused at once (auth decides each); the signed web API within the 2 s a proxy keeps an answer.
  assert.equal((await reaches('carol', 'ssh -J', 'web2')).ok, false);
  const ls = await waitFor(async () => {
    const r = await runPostern(['ls'], { env: userEnv(homes.carol) });
    return r.code !== 0 && r;
  }, { what: 'postern ls refused under the role lock', intervalMs: 300 });
  assert.match(ls.stderr, /role access is locked: audit week/);
  await admin(['lock', 'rm', byRole.id]);
  await waitFor(async () => (await runPostern(['ls'], { env: userEnv(homes.carol) })).code === 0, { what: 'postern ls after the role lock went', intervalMs: 300 });
  await waitFor(async () => (await reaches('carol', 'ssh -J', 'web2')).ok, { what: 'ssh -J after the role lock went', intervalMs: 300 });
});

// After the tests of bob and carol: this one logs alice in four times (web, CLI, web, web), and
// auth accepts three TOTP steps at a time, each once per user; her signup and login in before()
// used two, and while the tests above ran, more steps came, so her codes need not wait for them.
test('locking a user ends their live sessions with the reason, refuses new ones and logins; lock rm restores', async () => {
  const all = Object.keys(ways('alice'));
  for (const w of all) assert.ok((await reaches('alice', w, 'web1')).ok, `${w} works before the lock`);
  const sessions = Object.fromEntries(all.map((w) => [w, longSession('alice', w, 'web1')]));
  const bystander = longSession('bob', 'ssh -J', 'web1');
  try {
    for (const [w, s] of Object.entries(sessions)) await s.started.catch((err: Error) => assert.fail(`${w}: ${err.message}`));
    await bystander.started;
    const login = await webLogin('alice');
    assert.equal(login.status, 200, login.message);
    const term = await webTerminal(login.cookie!, 'web1');

    const made = JSON.parse(await admin(['lock', '--user', 'alice', '--reason', 'laptop stolen', '--format', 'json'])) as { id: string; target: { user: string }; reason: string };
    assert.deepEqual(made.target, { user: 'alice' });
    const t0 = Date.now();
    const cut: Record<string, number> = {};
    const ended = await Promise.all(Object.entries(sessions).map(async ([w, s]) => {
      const r = await withinDeadline(w, s.ended, t0);
      cut[w] = (Date.now() - t0) / 1000;
      return [w, r] as const;
    }));
    const web1 = await withinDeadline('the web terminal', term.ended, t0);
    cut['web terminal'] = (Date.now() - t0) / 1000;
    console.log(`# seconds from lock to the end of each live session: ${JSON.stringify(cut)}`);
    for (const [w, r] of ended) assert.notEqual(r.code, 0, `${w} ended with 0: ${r.stderr}`);
    // The web terminal says why; so does a subsystem's stderr (postern proxy ssh passes it on).
    assert.match(web1.text, /session terminated: user alice is locked: laptop stolen/);
    assert.match(ended.find(([w]) => w === 'ProxyCommand over the SSH listener')![1].stderr, /session terminated: user alice is locked: laptop stolen/);
    // ssh -J: the jump connection's disconnect reason, as OpenSSH prints it.
    assert.match(ended.find(([w]) => w === 'ssh -J')![1].stderr, /Received disconnect from 127\.0\.0\.1 port \d+:11: session terminated: user alice is locked: laptop stolen/);
    // Bob, on the same node through the same proxy, goes on.
    assert.equal(await Promise.race([bystander.ended.then(() => 'ended'), new Promise((r) => setTimeout(r, 100, 'open'))]), 'open');

    // New connections and logins are refused, naming the reason.
    for (const w of all) assert.equal((await reaches('alice', w, 'web1')).ok, false, `${w} still works while locked`);
    const ls = await waitFor(async () => {
      const r = await runPostern(['ls'], { env: userEnv(homes.alice) });
      return r.code !== 0 && r;
    }, { what: 'postern ls refused under the lock', intervalMs: 300 });
    assert.match(ls.stderr, /user alice is locked: laptop stolen/);
    const cliLogin = await runPostern(['login', '--proxy', c.serve.web, '--user', 'alice', '--password-stdin', '--otp', await c.freshCode('alice', SECRETS.alice), '--ca-pin', c.serve.caPin, '--add-keys-to-agent', 'no'],
      { env: { TSH_HOME: homes.alice }, input: TEST_PASSWORD + '\n' });
    assert.equal(cliLogin.code, 1, cliLogin.stderr);
    assert.match(cliLogin.stderr, /error: user alice is locked: laptop stolen/);
    assert.match(cliLogin.stderr, /hint: Ask an admin; they see the locks with: {2}postern lock ls/);
    const again = await webLogin('alice');
    assert.equal(again.status, 403);
    assert.match(again.message ?? '', /user alice is locked: laptop stolen/);
    // The web session of before the lock is over.
    assert.equal((await web('GET', '/webapi/nodes', { cookie: login.cookie! })).status, 401);

    const ls2 = await admin(['lock', 'ls']);
    assert.match(ls2, new RegExp(`${made.id}\\s+user alice\\s+laptop stolen\\s+\\S+\\s+\\S+\\s+never`));
    await admin(['lock', 'rm', made.id.slice(0, 8)]);
    // A proxy keeps auth's answer up to 2 s: access returns within seconds.
    for (const w of all) await waitFor(async () => (await reaches('alice', w, 'web1')).ok, { what: `${w} working again after lock rm`, intervalMs: 300 });
    assert.equal((await webLogin('alice')).status, 200);

    const created = await auditTypes('lock');
    assert.ok(created.some((e) => e.type === 'lock.created' && e.lockId === made.id && e.reason === 'laptop stolen'), JSON.stringify(created));
    assert.ok(created.some((e) => e.type === 'lock.deleted' && e.lockId === made.id));
    const terminated = (await auditTypes('session.terminated')).filter((e) => e.user === 'alice');
    assert.ok(terminated.length >= 4, JSON.stringify(terminated));
    assert.ok(terminated.every((e) => e.locked === true && /user alice is locked: laptop stolen/.test(String(e.reason))));
    assert.ok((await auditTypes('user.login.failure')).some((e) => e.user === 'alice' && /locked: laptop stolen/.test(String(e.message))));
  } finally {
    for (const s of Object.values(sessions)) s.kill();
    bystander.kill();
  }
});

test('users reset cuts the user\'s open sessions (ssh -J and the web terminal)', async () => {
  const s = longSession('carol', 'ssh -J', 'web2');
  const login = await webLogin('carol');
  assert.equal(login.status, 200, login.message);
  try {
    await s.started;
    const term = await webTerminal(login.cookie!, 'web2');
    await admin(['users', 'reset', 'carol']);
    const t0 = Date.now();
    const r = await withinDeadline('carol\'s ssh -J session', s.ended, t0);
    assert.notEqual(r.code, 0);
    const w = await withinDeadline('carol\'s web terminal', term.ended, t0);
    assert.match(w.text, /session terminated: /);
    const terminated = (await auditTypes('session.terminated')).filter((e) => e.user === 'carol' && e.locked === false);
    assert.ok(terminated.length >= 2, JSON.stringify(terminated));
  } finally {
    s.kill();
  }
});

test('a lock is in force at every proxy: a second proxy cuts its live session and refuses new ones too', async () => {
  const tok = JSON.parse(await admin(['tokens', 'add', '--type', 'proxy', '--ttl', '10m', '--format', 'json'])) as { token: string };
  const p2 = await startServe({
    args: ['--roles', 'proxy', '--auth-server', c.serve.auth, '--join-token', tok.token, '--ca-pin', c.serve.caPin, '--web-addr', '127.0.0.1:0', '--ssh-addr', '127.0.0.1:0'],
  });
  c.onStop(() => p2.stop());
  const p2Ssh = Number(/ssh=[^ ]*:(\d+)/.exec(p2.ready)?.[1]);
  // Bob logs in again through proxy 2 (a home of his own there). Bob, not alice: the test above
  // took alice's TOTP steps, and one more code of hers would wait for the next step.
  const home2 = mkdtempSync(join(tmpdir(), 'postern-lock-p2-'));
  const login = await runPostern(['login', '--proxy', p2.web, '--user', 'bob', '--password-stdin', '--otp', await c.freshCode('bob', SECRETS.bob), '--ca-pin', c.serve.caPin, '--add-keys-to-agent', 'no'],
    { env: { TSH_HOME: home2 }, input: TEST_PASSWORD + '\n' });
  assert.equal(login.code, 0, login.stderr + p2.stderr());
  const f = userFiles(home2, 'bob');
  const cfg = join(home2, 'ssh_config_jump');
  writeFileSync(cfg, [
    'Host *', `  IdentityFile ${f.key}`, `  CertificateFile ${f.cert}`, '  IdentitiesOnly yes', '  IdentityAgent none',
    `  UserKnownHostsFile ${f.knownHosts}`, '  StrictHostKeyChecking yes', '  BatchMode yes', '  ConnectTimeout 30', '',
  ].join('\n'));
  const args = (cmd: string[]): string[] => ['-F', cfg, '-J', `bob@127.0.0.1:${p2Ssh}`, `${LOCAL_USER}@web1`, ...cmd];
  const child = spawn('ssh', args(['echo started; exec sleep 600']), { env: userEnv(home2), stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const ended = new Promise<number | null>((resolve) => child.on('close', resolve));
  try {
    await waitFor(() => out.includes('started'), { what: 'a session through proxy 2', detail: () => err + p2.stderr().slice(-2000) });
    const lock = JSON.parse(await admin(['lock', '--user', 'bob', '--reason', 'every proxy', '--format', 'json'])) as { id: string };
    const t0 = Date.now();
    await withinDeadline('the session through proxy 2', ended, t0);
    console.log(`# seconds from lock to the end of a session through a second proxy: ${(Date.now() - t0) / 1000}`);
    assert.match(err, /session terminated: user bob is locked: every proxy/);
    const again = await runDetached('ssh', args(['echo', 'again']), userEnv(home2));
    assert.notEqual(again.code, 0);
    await admin(['lock', 'rm', lock.id]);
    await waitFor(async () => (await runDetached('ssh', args(['echo', 'back']), userEnv(home2))).stdout === 'back\n', { what: 'access through proxy 2 after lock rm', intervalMs: 300 });
  } finally {
    try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
  }
});

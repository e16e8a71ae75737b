/**
 * Locks, resets and removals against the participants of someone else's live session, on a
 * real cluster (`session_recording: proxy`, a real sshd node): alice's shell runs through the
 * real `ssh -A -tt` with `postern proxy ssh`, and others join it.
 *
 * - carol watches with `postern join`; `postern lock --user carol` removes her within seconds:
 *   her `postern join` exits 1 saying why, alice sees her leave and types on.
 * - erin joins as peer in the web UI's websocket; a lock on her role removes her with an
 *   ERR_POSTERN_LOCKED frame; alice's shell goes on.
 * - dave is in the session twice (`postern join` and the web join): `users reset dave` ends
 *   both; frank's `postern join` ends at `users rm frank`.
 * - hank, locked: `postern join` is refused at the SSH listener with the lock's reason, a web
 *   join gets nothing, and on a connection he opened before the lock auth's authorizeJoin
 *   refuses with the lock's message, audited as a failed session.join; `lock rm` restores.
 * - Relayed (two proxies, docs/ha.md): carol's `postern join` and ivy's web join land on proxy
 *   B while the session runs through proxy A; locks remove both, and alice on A sees them leave.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import WebSocket from 'ws';
import { Agent as HttpAgent, request } from 'undici';
import type { Client, ClientChannel } from 'ssh2';
import { TestCluster, TEST_PASSWORD, addToAgent } from '../helpers/cluster.ts';
import { runPostern } from '../helpers/cli.ts';
import type { CliResult } from '../helpers/cli.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { waitFor, waitForText as until } from '../helpers/wait.ts';
import { addJoinRole, joiner, ownerShell, sessionsOf, startRecordingProxies, stillTypes } from '../helpers/live-sessions.ts';
import type { Shell } from '../helpers/live-sessions.ts';
import type { ActiveSession } from '../../src/api/types.ts';
import { connectToProxy } from '../../src/client/proxy-conn.ts';
import { loadLogin } from '../../src/client/stored-login.ts';

/** A lock, reset or removal must remove a joiner within this (a sweep each second, answers kept 2 s). */
const CUT_DEADLINE_MS = 20_000;

const SECRETS: Record<string, string> = {
  alice: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
  carol: 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U',
  erin: 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ',
  dave: 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ',
  frank: 'MZXW6YTBOI5GC3DJMJSXEZLOMRSXG5DF',
  hank: 'NBQW423FNRWG6IDXN5ZGYZBAMJQW4Y3F',
  ivy: 'OJSWG33SMRUW4ZZANJXWS3TTEBZG63LF',
};

const dispatcher = new HttpAgent({ connect: { rejectUnauthorized: false } });
const c = new TestCluster();
const homes: Record<string, string> = {};
let agentSock: string;

after(async () => {
  await dispatcher.close();
  await c.stop();
});

/** alice's session on web1 as `sessions ls` lists it once it runs (`except`: ids of earlier ones). */
async function liveSessionOf(home: string, except: string[] = []): Promise<ActiveSession> {
  return waitFor(async () => (await sessionsOf(home)).find((s) => s.user === 'alice' && s.kind === 'ssh' && !except.includes(s.id)), { what: 'alice\'s live session', intervalMs: 300 });
}

/** Who is in the session now, as auth lists it. */
async function presentIn(home: string, id: string): Promise<string[]> {
  return ((await sessionsOf(home)).find((s) => s.id === id)?.participants ?? []).map((p) => `${p.user}:${p.mode}`);
}

async function webLogin(cluster: TestCluster, web: string, user: string): Promise<string> {
  const res = await request(`https://${web}/webapi/sessions/web`, {
    method: 'POST', dispatcher, headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, password: TEST_PASSWORD, otp: await cluster.freshCode(user, SECRETS[user]) }),
  });
  const text = await res.body.text();
  assert.equal(res.statusCode, 200, text);
  const cookie = /(__Host-postern_session=[^;]+)/.exec(String(res.headers['set-cookie'] ?? ''))?.[1];
  assert.ok(cookie, 'a session cookie');
  return cookie;
}

/** A join of the web UI: the websocket, its JSON frames, the screen so far, and the HTTP status of an upgrade refused. */
interface WebJoin { frames: Array<Record<string, unknown>>; screen: () => string; closed: Promise<number>; refused: () => number | undefined; send(text: string): void; close(): void }

function webJoin(web: string, cookie: string, id: string, mode: string): WebJoin {
  const ws = new WebSocket(`wss://${web}/webapi/sessions/${id}/join?mode=${mode}`, { headers: { origin: `https://${web}`, cookie }, rejectUnauthorized: false });
  const frames: Array<Record<string, unknown>> = [];
  let screen = '';
  ws.on('message', (d: Buffer, binary: boolean) => { if (binary) screen += d.toString('utf8'); else frames.push(JSON.parse(d.toString('utf8')) as Record<string, unknown>); });
  ws.on('error', () => {});
  let refused: number | undefined;
  const closed = new Promise<number>((resolve) => {
    ws.on('close', (code) => resolve(code));
    ws.on('unexpected-response', (_req, res) => { refused = res.statusCode; res.resume(); resolve(1006); });
  });
  return { frames, screen: () => screen, closed, refused: () => refused, send: (text) => ws.send(Buffer.from(text)), close: () => ws.close() };
}

async function joinedOnWeb(j: WebJoin, what: string): Promise<void> {
  await waitFor(() => j.frames.some((f) => f.type === 'session'), { what, detail: () => JSON.stringify(j.frames) });
}

/** Resolves with `p`, or fails once CUT_DEADLINE_MS passed since `since`; returns how long it took. */
async function within<T>(what: string, p: Promise<T>, since: number, log: () => string): Promise<{ value: T; ms: number }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still there ${CUT_DEADLINE_MS / 1000} s later\n${log().slice(-3000)}`)), CUT_DEADLINE_MS - (Date.now() - since));
  });
  try {
    const value = await Promise.race([p, timeout]);
    return { value, ms: Date.now() - since };
  } finally {
    clearTimeout(timer);
  }
}

async function ok(r: Promise<CliResult>, what: string): Promise<string> {
  const res = await r;
  assert.equal(res.code, 0, `${what}: ${res.stderr}`);
  return res.stdout;
}

async function auditOf(admin: (args: string[]) => Promise<CliResult>, type: string): Promise<Array<Record<string, unknown>>> {
  return JSON.parse(await ok(admin(['audit', '--type', type, '--since', '1h', '--format', 'json']), 'audit')) as Array<Record<string, unknown>>;
}

const admin = (args: string[]): Promise<CliResult> => c.admin(args);

/** alice's shell on web1 (this file's cluster), once it runs, and her session as listed. */
async function aliceLive(): Promise<{ sh: Shell; live: ActiveSession }> {
  const sh = ownerShell(c, homes.alice, agentSock);
  await stillTypes(sh, 'owner-ready');
  return { sh, live: await liveSessionOf(homes.alice) };
}

/** alice ends her shell: it exits 0. */
async function endShell(sh: Shell): Promise<void> {
  sh.type('exit');
  assert.equal(await sh.exit, 0, sh.out());
}

before(async () => {
  await c.start('session_recording: proxy');
  agentSock = await c.agent();
  for (const role of ['watcher', 'webwatch']) await addJoinRole(c, role, ['observer', 'peer']);
  for (const [user, roles] of [['alice', 'access'], ['carol', 'watcher'], ['erin', 'webwatch'], ['dave', 'watcher'], ['frank', 'watcher'], ['hank', 'watcher']] as const) {
    homes[user] = await c.user(user, LOCAL_USER, SECRETS[user], roles);
  }
  addToAgent(c, homes.alice, 'alice', agentSock);
  await c.node('web1', 'env=prod');
});

test('a lock on a joiner ends their `postern join` with the lock\'s reason and exit 1; alice sees them leave and types on', async (t) => {
  const { sh, live } = await aliceLive();

  const carol = joiner(homes.carol, live.id, 'observer', c);
  await until(carol.err, /joined session/);
  await until(sh.out, /carol joined as observer/);
  await stillTypes(sh, 'watched');
  await until(carol.out, 'watched-');

  const lockedAt = Date.now();
  await ok(admin(['lock', '--user', 'carol', '--reason', 'left the team']), 'lock carol');
  const { value: code, ms } = await within('carol\'s join', carol.exit, lockedAt, () => carol.err() + c.serve.stderr());
  t.diagnostic(`carol removed ${ms} ms after the lock`);
  assert.equal(code, 1, carol.err());
  assert.match(carol.err(), new RegExp(`\\[postern\\] removed from session ${live.id}: user carol is locked: left the team`));

  // The session goes on for alice: she sees carol leave, types, and is alone in it.
  await until(sh.out, 'carol left');
  await stillTypes(sh, 'after-lock');
  await waitFor(async () => (await presentIn(homes.alice, live.id)).join() === 'alice:owner', { what: 'alice alone in the session', intervalMs: 300 });

  const cut = await waitFor(async () => (await auditOf(admin, 'session.terminated')).find((e) => e.user === 'carol' && e.sessionId === live.id), { what: 'the cut in the audit log', intervalMs: 300 });
  assert.deepEqual([cut.via, cut.locked, cut.node, cut.login], ['join', true, 'web1', LOCAL_USER]);
  assert.match(String(cut.message), /removed from session .*: user carol is locked: left the team/);
  assert.ok(!(await auditOf(admin, 'session.terminated')).some((e) => e.user === 'alice'), 'alice\'s session was not cut');

  await endShell(sh);
});

test('a lock on a web joiner\'s role ends their web join with ERR_POSTERN_LOCKED; alice\'s shell goes on', async (t) => {
  const { sh, live } = await aliceLive();

  // erin joins as peer in the web UI: what she types runs in alice's shell.
  const erin = webJoin(c.serve.web, await webLogin(c, c.serve.web, 'erin'), live.id, 'peer');
  await joinedOnWeb(erin, 'erin\'s web join');
  await until(sh.out, /erin joined as peer/);
  const n = randomInt(1000, 1_000_000);
  erin.send(`echo erin-typed-$((${n}+1))\r`);
  await until(sh.out, `erin-typed-${n + 1}`);

  const lockedAt = Date.now();
  await ok(admin(['lock', '--role', 'webwatch', '--reason', 'audit week']), 'lock the role');
  const { value: code, ms } = await within('erin\'s web join', erin.closed, lockedAt, () => JSON.stringify(erin.frames) + c.serve.stderr());
  t.diagnostic(`erin removed ${ms} ms after the role lock`);
  assert.equal(code, 4403);
  const error = erin.frames.find((f) => f.type === 'error');
  assert.ok(error, JSON.stringify(erin.frames));
  assert.equal(error.code, 'ERR_POSTERN_LOCKED');
  assert.equal(error.message, `removed from session ${live.id}: role webwatch is locked: audit week`);
  assert.ok(!erin.frames.some((f) => f.type === 'exit'), 'not told the session ended: it did not');

  await until(sh.out, 'erin left');
  await stillTypes(sh, 'after-role-lock');
  await waitFor(async () => (await presentIn(homes.alice, live.id)).join() === 'alice:owner', { what: 'alice alone in the session', intervalMs: 300 });
  const cut = await waitFor(async () => (await auditOf(admin, 'session.terminated')).find((e) => e.user === 'erin'), { what: 'the cut in the audit log', intervalMs: 300 });
  assert.deepEqual([cut.via, cut.sessionId, cut.locked], ['web-join', live.id, true]);

  await endShell(sh);
});

test('users reset ends a joiner\'s `postern join` and web join; users rm ends one too; the session goes on', async (t) => {
  const { sh, live } = await aliceLive();

  const daveCli = joiner(homes.dave, live.id, 'observer', c);
  await until(daveCli.err, /joined session/);
  const daveWeb = webJoin(c.serve.web, await webLogin(c, c.serve.web, 'dave'), live.id, 'observer');
  await joinedOnWeb(daveWeb, 'dave\'s web join');
  const frank = joiner(homes.frank, live.id, 'peer', c);
  await until(frank.err, /joined session/);
  await waitFor(async () => (await presentIn(homes.alice, live.id)).length === 4, { what: 'dave twice and frank in the session', intervalMs: 300 });

  const resetAt = Date.now();
  await ok(admin(['users', 'reset', 'dave']), 'reset dave');
  const cli = await within('dave\'s postern join', daveCli.exit, resetAt, () => daveCli.err() + c.serve.stderr());
  const web = await within('dave\'s web join', daveWeb.closed, resetAt, () => JSON.stringify(daveWeb.frames));
  t.diagnostic(`dave removed ${cli.ms} ms (postern join) and ${web.ms} ms (web) after the reset`);
  assert.equal(cli.value, 1, daveCli.err());
  assert.match(daveCli.err(), new RegExp(`removed from session ${live.id}: the account was reset or re-created since this certificate was issued`));
  assert.equal(web.value, 4401);
  const error = daveWeb.frames.find((f) => f.type === 'error');
  assert.equal(error?.code, 'ERR_POSTERN_ACCOUNT_REVOKED', JSON.stringify(daveWeb.frames));
  assert.match(String(error?.message), new RegExp(`^removed from session ${live.id}: the web session was ended`));
  await waitFor(() => (sh.out().match(/dave left/g) ?? []).length === 2, { what: 'alice seeing both of dave\'s joins leave', detail: sh.out });

  const removedAt = Date.now();
  await ok(admin(['users', 'rm', 'frank']), 'remove frank');
  const gone = await within('frank\'s postern join', frank.exit, removedAt, () => frank.err() + c.serve.stderr());
  t.diagnostic(`frank removed ${gone.ms} ms after users rm`);
  assert.equal(gone.value, 1, frank.err());
  assert.match(frank.err(), new RegExp(`removed from session ${live.id}: the account no longer exists`));
  await until(sh.out, 'frank left');

  await stillTypes(sh, 'after-reset');
  await waitFor(async () => (await presentIn(homes.alice, live.id)).join() === 'alice:owner', { what: 'alice alone in the session', intervalMs: 300 });
  const cuts = await waitFor(async () => {
    const all = (await auditOf(admin, 'session.terminated')).filter((e) => e.sessionId === live.id);
    return all.length >= 3 ? all : undefined;
  }, { what: 'the three cuts in the audit log', intervalMs: 300 });
  assert.deepEqual(cuts.map((e) => `${String(e.user)}:${String(e.via)}:${String(e.locked)}`).sort(), ['dave:join:false', 'dave:web-join:false', 'frank:join:false']);

  await endShell(sh);
});

test('a locked user\'s join is refused with the lock\'s reason (also on a connection from before the lock), audited; lock rm restores', async () => {
  const { sh, live } = await aliceLive();
  const cookie = await webLogin(c, c.serve.web, 'hank');
  // An SSH connection to the proxy that hank opens before the lock, as a long-lived client would hold it.
  const stored = loadLogin(homes.hank);
  const early: Client = await connectToProxy({ profile: stored.profile, keyPair: stored.keyPair, certificateText: stored.certificateText, knownHostsPath: stored.paths.knownHosts, username: 'hank' });
  c.onStop(async () => { early.end(); });

  const lock = JSON.parse(await ok(admin(['lock', '--user', 'hank', '--reason', 'on leave', '--format', 'json']), 'lock hank')) as { id: string };

  // A new `postern join` at once: refused, saying why, by auth's join decision (exit 1) while the
  // proxy still holds its answer about hank's certificate from before the lock (2 s), then by the
  // SSH listener at login (exit 255).
  const first = await runPostern(['join', live.id, '--mode', 'observer'], { env: { TSH_HOME: homes.hank } });
  assert.ok(
    (first.code === 1 && /^error: user hank is locked: on leave$/m.test(first.stderr))
    || (first.code === 255 && /refused the login of "hank": user hank is locked: on leave/.test(first.stderr)),
    `${first.code}: ${first.stderr}`,
  );
  assert.equal(first.stdout, '');
  const refused = await waitFor(async () => {
    const res = await runPostern(['join', live.id, '--mode', 'observer'], { env: { TSH_HOME: homes.hank } });
    return res.code === 255 ? res : undefined;
  }, { what: 'the SSH listener refusing hank\'s certificate', intervalMs: 500 });
  assert.match(refused.stderr, /error: the proxy at 127\.0\.0\.1:\d+ refused the login of "hank": user hank is locked: on leave/);
  assert.equal(refused.stdout, '');

  // The web join: the lock ended his web session, so the upgrade is refused.
  const web = webJoin(c.serve.web, cookie, live.id, 'observer');
  await web.closed;
  assert.equal(web.refused(), 401, JSON.stringify(web.frames));
  assert.ok(!web.frames.some((f) => f.type === 'session'), JSON.stringify(web.frames));

  // On the connection from before the lock: auth's join decision refuses, with the lock's message.
  const exec = await new Promise<{ code: number | undefined; stderr: string }>((resolve, reject) => {
    early.exec(`join ${live.id} observer`, (err: Error | undefined, ch: ClientChannel) => {
      if (err) { reject(err); return; }
      let stderr = '';
      let code: number | undefined;
      ch.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
      ch.on('exit', (n: number | null) => { if (typeof n === 'number') code = n; });
      ch.on('data', () => {});
      ch.on('close', () => resolve({ code, stderr }));
    });
  });
  assert.equal(exec.code, 1, exec.stderr);
  assert.equal(exec.stderr.trim(), 'error: user hank is locked: on leave');
  early.end();
  // Audited before the refusal was sent.
  const joins = (await auditOf(admin, 'session.join')).filter((e) => e.user === 'hank');
  assert.ok(joins.some((e) => e.success === false && e.sessionId === live.id && e.message === 'user hank is locked: on leave' && e.lockId === lock.id), JSON.stringify(joins));
  assert.ok(!joins.some((e) => e.success === true), 'no join of hank succeeded');
  assert.ok(!sh.out().includes('hank joined'), 'alice never saw hank join');

  // lock rm: hank joins again (his certificate works within seconds).
  await ok(admin(['lock', 'rm', lock.id]), 'lock rm');
  const again = await waitFor(async () => {
    const j = joiner(homes.hank, live.id, 'observer', c);
    const outcome = await Promise.race([j.exit.then(() => 'exited'), waitFor(() => /joined session/.test(j.err()) && 'joined', { what: 'the join', timeoutMs: 15_000 }).catch(() => 'slow')]);
    if (outcome === 'joined') return j;
    j.proc.kill();
    return undefined;
  }, { what: 'hank joining once the lock is removed', intervalMs: 500 });
  await until(sh.out, /hank joined as observer/);
  again.proc.stdin.end();
  assert.equal(await again.exit, 0, again.err());

  await endShell(sh);
});

test('relayed joins: a session through proxy A, joined through proxy B by `postern join` and the web UI; locks remove both and alice on A sees them leave', { timeout: 600_000 }, async (t) => {
  const r = new TestCluster();
  t.after(() => r.stop());
  const { admin: rAdmin, proxies: [pA, pB], through } = await startRecordingProxies(r);
  const rAgentSock = await r.agent();
  through(pA);
  await addJoinRole(r, 'watcher', ['observer', 'peer']);
  await r.node('web1', 'env=prod');
  const alice = await r.user('alice', LOCAL_USER, SECRETS.alice);
  through(pB);
  const carol = await r.user('carol', LOCAL_USER, SECRETS.carol, 'watcher');
  await r.user('ivy', LOCAL_USER, SECRETS.ivy, 'watcher');
  addToAgent(r, alice, 'alice', rAgentSock);

  const sh = ownerShell(r, alice, rAgentSock);
  await stillTypes(sh, 'owner-ready');
  const live = await liveSessionOf(carol);
  const sshPortA = /ssh=[^ ]*:(\d+)/.exec(pA.ready)?.[1];
  assert.equal(live.proxySshAddr?.replace(/^.*:/, ''), sshPortA, 'the session is carried by proxy A');

  const carolJoin = joiner(carol, live.id, 'observer', r);
  await until(carolJoin.err, /joined session/);
  const ivy = webJoin(pB.web, await webLogin(r, pB.web, 'ivy'), live.id, 'peer');
  await joinedOnWeb(ivy, 'ivy\'s web join through B');
  await until(sh.out, /carol joined as observer/);
  await until(sh.out, /ivy joined as peer/);
  await stillTypes(sh, 'relayed');
  await until(carolJoin.out, 'relayed-');
  await waitFor(() => ivy.screen().includes('relayed-'), { what: 'ivy seeing the shell through the relay', detail: ivy.screen });

  const lockedAt = Date.now();
  await ok(rAdmin(['lock', '--user', 'carol', '--reason', 'relay test']), 'lock carol');
  await ok(rAdmin(['lock', '--user', 'ivy', '--reason', 'relay test']), 'lock ivy');
  const cli = await within('carol\'s relayed join', carolJoin.exit, lockedAt, () => carolJoin.err() + pB.stderr());
  const web = await within('ivy\'s relayed web join', ivy.closed, lockedAt, () => JSON.stringify(ivy.frames) + pB.stderr());
  t.diagnostic(`relayed joiners removed ${cli.ms} ms (postern join) and ${web.ms} ms (web) after the locks`);
  assert.equal(cli.value, 1, carolJoin.err());
  assert.match(carolJoin.err(), new RegExp(`removed from session ${live.id}: user carol is locked: relay test`));
  assert.equal(web.value, 4403);
  assert.equal(ivy.frames.find((f) => f.type === 'error')?.message, `removed from session ${live.id}: user ivy is locked: relay test`);

  // On proxy A, which carries the session: both leave, and alice types on.
  await until(sh.out, 'carol left');
  await until(sh.out, 'ivy left');
  await stillTypes(sh, 'after-relayed-locks');
  await waitFor(async () => (await presentIn(alice, live.id)).join() === 'alice:owner', { what: 'alice alone in the session', intervalMs: 300 });
  // Proxy B, where the joiners were, cut and audited them.
  const cuts = await waitFor(async () => {
    const all = (await auditOf(rAdmin, 'session.terminated')).filter((e) => e.sessionId === live.id);
    return all.length >= 2 ? all : undefined;
  }, { what: 'both cuts in the audit log', intervalMs: 300 });
  assert.deepEqual(cuts.map((e) => `${String(e.user)}:${String(e.via)}`).sort(), ['carol:join', 'ivy:web-join']);

  await endShell(sh);
});

/**
 * Live sessions from the CLI: with `session_recording: proxy`, alice runs a long
 * shell with the real OpenSSH client (`ssh -A -tt`, ProxyCommand `postern proxy ssh`) on a
 * real sshd node. `postern sessions ls` lists it to those who may see it; carol (a role that
 * may observe alice's role) watches it live with `postern join --mode observer` without a
 * terminal; alice's `join --mode peer` with piped stdin types into the shell and leaves at
 * EOF; carol as peer, bob (no join rule) and an unknown id are refused with exit 1 and the
 * proxy's message; `postern audit --format json` holds session.start, every session.join
 * (successes and failures) and session.end with the right users and outcomes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { TestCluster, addToAgent } from '../helpers/cluster.ts';
import { runPostern } from '../helpers/cli.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { waitFor, waitForText as until } from '../helpers/wait.ts';
import { addJoinRole, assertJoinsRefused, joiner, joinOnTty, ownerShell, sessionsOf } from '../helpers/live-sessions.ts';

const c = new TestCluster();
let alice: string;
let bob: string;
let carol: string;
let agentSock: string;

interface Event { type: string; user?: string; success: boolean; sessionId?: string; mode?: string; reason?: string }

/** Retries `fn` until it returns something, for state that auth learns a moment later. */
function eventually<T>(fn: () => Promise<T | undefined>, what: string, ms = 30_000): Promise<T> {
  return waitFor(fn, { what, timeoutMs: ms, intervalMs: 300 });
}

before(async () => {
  await c.start('session_recording: proxy');
  agentSock = await c.agent();
  // carol's role may watch sessions of users with the access role, but not type in them.
  await addJoinRole(c, 'watcher', ['observer']);
  alice = await c.user('alice', LOCAL_USER, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  bob = await c.user('bob', LOCAL_USER, 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ');
  carol = await c.user('carol', LOCAL_USER, 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U', 'watcher');
  // alice's key and certificate in her agent, as `postern login` puts them there; ssh -A forwards it.
  addToAgent(c, alice, 'alice', agentSock);
  await c.node('web1', 'env=prod');
});

after(async () => {
  await c.stop();
});

test('sessions ls lists a recording-mode shell; an observer sees it live; a peer types into it; refusals exit 1; all audited', async () => {
  const { sh, out, exit: shExit } = ownerShell(c, alice, agentSock);
  let observer: ReturnType<typeof joiner> | undefined;
  try {
    sh.stdin.write('echo owner-$((1+1))-ready\n');
    await until(out, 'owner-2-ready');

    // Listed to the owner and to carol (her role may observe alice's); not to bob.
    const live = (await sessionsOf(alice)).find((s) => s.user === 'alice' && s.kind === 'ssh');
    assert.ok(live, 'alice sees her session');
    assert.equal(live.node, 'web1');
    assert.equal(live.login, LOCAL_USER);
    assert.ok(Math.abs(Date.now() - Date.parse(live.startedAt)) < 10 * 60_000, live.startedAt);
    assert.deepEqual(live.participants.map((p) => `${p.user}:${p.mode}`), ['alice:owner']);
    assert.ok((await sessionsOf(carol)).some((s) => s.id === live.id), 'carol may see it');
    assert.equal((await sessionsOf(bob)).some((s) => s.id === live.id), false, 'bob may not see it');
    const text = await runPostern(['sessions', 'ls'], { env: { TSH_HOME: alice } });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /ID\s+Kind\s+User\s+Node\s+Login\s+Started\s+Participants/);
    assert.ok(text.stdout.includes(live.id) && text.stdout.includes('alice (owner)'), text.stdout);

    // carol observes without a terminal: she sees what the shell prints from now on, and the screen so far.
    observer = joiner(carol, live.id, 'observer');
    await until(observer.err, /joined session/);
    await until(out, /carol joined as observer/);
    sh.stdin.write('echo live-$((2+3))-out\n');
    await until(observer.out, 'live-5-out');
    observer.proc.stdin.write('echo carol-typed-this\n');
    const withCarol = await eventually(async () => (await sessionsOf(alice)).find((s) => s.id === live.id && s.participants.some((p) => p.user === 'carol')), 'carol among the participants');
    assert.deepEqual(withCarol.participants.map((p) => `${p.user}:${p.mode}`), ['alice:owner', 'carol:observer']);

    // alice joins her own session as peer with piped stdin: the line runs in the shell, EOF leaves (exit 0).
    const n = randomInt(1000, 1_000_000);
    const peer = await runPostern(['join', live.id, '--mode', 'peer'], { env: { TSH_HOME: alice }, input: `echo peer-$((${n}+1))\n` });
    assert.equal(peer.code, 0, peer.stderr);
    assert.match(peer.stderr, /joined session/);
    await until(out, `peer-${n + 1}`);
    await until(observer.out, `peer-${n + 1}`);
    await until(out, 'alice left');
    assert.equal(out().includes('carol-typed-this'), false, 'an observer\'s keys never reach the shell');

    // Refusals: exit 1 with the proxy's message, nothing on stdout.
    await assertJoinsRefused(live.id, { carol, bob, unknownBy: alice });

    // The owner ends the shell: the observer is told and exits 0; the session leaves the list.
    sh.stdin.write('exit\n');
    assert.equal(await shExit, 0, out());
    assert.equal(await observer.exit, 0, observer.err());
    assert.match(observer.err(), /session ended/);
    await eventually(async () => ((await sessionsOf(alice)).some((s) => s.id === live.id) ? undefined : true), 'the session to leave the list');

    const audit = await eventually(async () => {
      const r = await c.admin(['audit', '--since', '1h', '--format', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const events = (JSON.parse(r.stdout) as Event[]).filter((e) => e.sessionId === live.id || (e.type === 'session.join' && e.sessionId === 'NoSuchSession42'));
      return events.some((e) => e.type === 'session.end') ? events : undefined;
    }, 'session.end in the audit log');
    const has = (type: string, user: string, success: boolean, mode?: string): boolean =>
      audit.some((e) => e.type === type && e.user === user && e.success === success && (mode === undefined || e.mode === mode));
    const shown = JSON.stringify(audit);
    assert.ok(has('session.start', 'alice', true), shown);
    assert.ok(has('session.end', 'alice', true), shown);
    assert.ok(has('session.join', 'carol', true, 'observer'), shown);
    assert.ok(has('session.join', 'alice', true, 'peer'), shown);
    assert.ok(has('session.join', 'carol', false, 'peer'), shown);
    assert.ok(has('session.join', 'bob', false, 'observer'), shown);
    assert.ok(has('session.join', 'alice', false, 'observer'), shown);
    assert.equal(audit.filter((e) => e.type === 'session.join' && e.success).length, 2, shown);
    // --type and --user narrow it down.
    const bobs = JSON.parse((await c.admin(['audit', '--type', 'session.join', '--user', 'bob', '--format', 'json'])).stdout) as Event[];
    assert.ok(bobs.length >= 1 && bobs.every((e) => e.user === 'bob' && e.type === 'session.join' && !e.success), JSON.stringify(bobs));
  } finally {
    observer?.proc.kill();
    sh.kill();
  }
});

test('on a terminal: a peer types with a PTY and leaves with ~. at a line start; an observer leaves with Ctrl-C', async () => {
  const { sh, out, exit: shExit } = ownerShell(c, alice, agentSock);
  const ttys: Array<ReturnType<typeof joinOnTty>> = [];
  try {
    sh.stdin.write('echo tty-owner-$((2*3))\n');
    await until(out, 'tty-owner-6');
    const live = await eventually(async () => (await sessionsOf(alice)).find((s) => s.user === 'alice' && s.kind === 'ssh'), 'the live session');

    const peer = joinOnTty(alice, live.id, 'peer');
    ttys.push(peer);
    await until(peer.out, /joined session/);
    await until(out, /alice joined as peer/);
    // Raw mode: the line goes out as typed, Enter as \r, and the shell runs it.
    peer.proc.stdin.write('echo tty-peer-$((40+2))\r');
    await until(out, 'tty-peer-42');
    await until(peer.out, 'tty-peer-42');
    // ~ in the middle of a line is sent; ~. after Enter leaves without reaching the shell.
    // One chunk: the line runs, then ~. leaves.
    peer.proc.stdin.write('echo a~b-$((5+5))\r~.');
    await until(out, 'a~b-10');
    assert.equal(await peer.exit, 0, peer.out());
    await until(out, 'alice left');

    const observer = joinOnTty(carol, live.id, 'observer');
    ttys.push(observer);
    await until(observer.out, /joined session/);
    sh.stdin.write('echo tty-watch-$((9*9))\n');
    await until(observer.out, 'tty-watch-81');
    observer.proc.stdin.write('\x03');
    assert.equal(await observer.exit, 0, observer.out());
    // The owner's prompt was the last thing on the screen: the local prompt starts on a new line.
    assert.match(observer.out(), /\r\n$/, JSON.stringify(observer.out().slice(-80)));
    await until(out, 'carol left');

    // The session lives on after both left.
    sh.stdin.write('echo still-$((1+6))-here\n');
    await until(out, 'still-7-here');
    sh.stdin.write('exit\n');
    assert.equal(await shExit, 0, out());
  } finally {
    for (const t of ttys) t.proc.kill();
    sh.kill();
  }
});

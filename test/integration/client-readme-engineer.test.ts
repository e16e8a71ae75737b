/**
 * The README's engineer blocks, as written, against a real cluster (`postern serve` in
 * recording proxy mode, real sshd nodes, OpenSSH's ssh-agent): "For engineers" (signup and
 * login answered on a terminal, as a person types them: the password twice, the code from
 * the secret signup shows; status; logout), "Session recordings" and "Live sessions and
 * join", and the --help examples of ls, recordings ls, play, sessions ls, join and the
 * ProxyCommand of proxy ssh. Each line runs in a user's shell (UserShell: HOME with ~/.tsh,
 * `postern` on PATH, bash), with only what the README says to put in replaced: the proxy's
 * address, the cluster's name, the login, and the TOKEN, ID and sha256:… an earlier command
 * printed. "Reaching nodes" and the ssh/config examples run in client-readme.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, TEST_PASSWORD } from '../helpers/cluster.ts';
import { LOCAL_USER, startAgent } from '../helpers/openssh.ts';
import { waitFor } from '../helpers/wait.ts';
import { UserShell, helpExamples, readmeBlock } from '../helpers/readme.ts';
import type { Answer, ReadmeLine, ShellRun, TerminalRun } from '../helpers/readme.ts';

const c = new TestCluster();
const USER = 'alice';
let shell: UserShell;
let agentSock = '';
let invite = '';
/** The TOTP secret signup showed (and the test's authenticator app now holds). */
let totpSecret = '';

/** What the README says to put in: the proxy, the cluster, the login, what earlier commands printed. */
function localize(line: string, ids: { id?: string } = {}): string {
  let out = line
    .replace(/https:\/\/proxy\.example\.com:3080\/web\/invite\/TOKEN/g, invite)
    .replace(/sha256:…/g, c.serve.caPin)
    .replace(/proxy\.example\.com(:3080)?/g, c.serve.web)
    .replace(/<cluster>|example\.com/g, 'test.example')
    .replace(/\b(ubuntu|root)@/g, `${LOCAL_USER}@`);
  if (ids.id) out = out.replace(/\bID\b|\b3fJq8x0d2kLm\b/g, ids.id).replace(/\b3f2a\b/g, ids.id.slice(0, 6));
  return out;
}

/** Asserts a run ended with `code` (0 unless told), showing what it printed when not. */
function ok(r: ShellRun, written: string, ran: string, code = 0): void {
  assert.equal(r.code, code, `${written}\n  ran as: ${ran}\n${r.stdout}\n${r.stderr}\n--- serve ---\n${c.serve.stderr().slice(-2000)}`);
}

/** Runs one README line in the user's shell, without a terminal. */
async function run(l: ReadmeLine | string, ids: { id?: string } = {}, opts: { code?: number } = {}): Promise<ShellRun> {
  const written = typeof l === 'string' ? l : l.text;
  const ran = localize(written, ids);
  const r = await shell.run(ran, { env: { SSH_AUTH_SOCK: agentSock } });
  ok(r, written, ran, opts.code);
  return r;
}

/** Runs one README line on a terminal. */
function onTerminal(written: string, ids: { id?: string } = {}, answers: Answer[] = []): TerminalRun {
  return shell.terminal(localize(written, ids), { env: { SSH_AUTH_SOCK: agentSock }, answers });
}

/** The ID column of a `… ls` table's first row that matches `row`. */
function idFrom(table: string, row: RegExp): string {
  const line = table.split('\n').find((l) => row.test(l) && !/^ID\s/.test(l) && !/^-+/.test(l));
  assert.ok(line, `a row matching ${row} in:\n${table}`);
  return line.split(/\s+/)[0];
}

/** The login line of "For engineers", answered on a terminal: the password, then a code of the app. */
async function login(line: string): Promise<string> {
  const t = onTerminal(line, {}, [
    { prompt: /Password for alice/, reply: () => `${TEST_PASSWORD}\r` },
    { prompt: /Code from your authenticator app/, reply: async () => `${await c.freshCode(USER, totpSecret)}\r` },
  ]);
  const code = await t.exited;
  assert.equal(code, 0, `${line}\n${t.screen()}`);
  return t.screen();
}

before(async () => {
  await c.start('session_recording: proxy');
  const agent = await startAgent();
  c.onStop(() => agent.stop());
  agentSock = agent.socket;
  await c.node('web1', 'env=prod');
  await c.node('web2', 'env=prod,team=web');
  await c.node('db1', 'env=eu,team=db');
  shell = new UserShell(c.work);
  const add = await c.admin(['users', 'add', USER, '--logins', LOCAL_USER, '--format', 'json']);
  assert.equal(add.code, 0, add.stderr);
  invite = (JSON.parse(add.stdout) as { inviteUrl: string }).inviteUrl.replace(/^https:\/\/[^/]+/, `https://${c.serve.web}`);
  c.newUser(USER);
});

after(async () => {
  await c.stop();
});

test('README "For engineers": signup and login answered on a terminal, status, logout, as written', async () => {
  const [signup, loginLine, status, logout, ...rest] = readmeBlock('For engineers');
  assert.equal(rest.length, 0, 'the block has four lines');
  assert.match(signup.text, /^postern signup /);
  // signup: the new password twice, then the current code of the secret it shows.
  const s = onTerminal(signup.text, {}, [
    { prompt: /New password/, reply: () => `${TEST_PASSWORD}\r` },
    { prompt: /The same password again/, reply: () => `${TEST_PASSWORD}\r` },
    {
      prompt: /The current code from the app/,
      reply: async (screen) => {
        totpSecret = /Secret: ([A-Z2-7]+)/.exec(screen)?.[1] ?? '';
        assert.ok(totpSecret, screen);
        return `${await c.freshCode(USER, totpSecret)}\r`;
      },
    },
  ]);
  assert.equal(await s.exited, 0, `${signup.text}\n${s.screen()}`);
  assert.match(s.screen(), /Signed up as alice/);
  // The QR code is drawn on a terminal.
  assert.match(s.screen(), /[▀▄█]/);

  assert.match(loginLine.text, /^postern login /);
  const screen = await login(loginLine.text);
  assert.match(screen, /Logged in as: alice/);
  assert.match(screen, /Agent:\s+key and certificate added/, 'the key went into the ssh-agent, as the comment says');

  const st = await run(status);
  assert.match(st.stdout, /Logged in as: alice/);
  assert.match(st.stdout, /In agent:\s+yes/);
  await run(logout);
  const after = await shell.run('postern status');
  assert.notEqual(after.code, 0, 'no profile after logout');

  // The later blocks need a login: the block's own line again.
  await login(loginLine.text);
});

/** A recorded session of alice on web1 (recording proxy mode), made the way "Reaching nodes" says. */
async function recordedSession(marker: string): Promise<string> {
  const line = `postern ssh -A ${LOCAL_USER}@web1 'echo ${marker}-$((6*7))'`;
  const r = await shell.run(line, { env: { SSH_AUTH_SOCK: agentSock } });
  ok(r, line, line);
  assert.equal(r.stdout, `${marker}-42\n`);
  // The recording is complete once the proxy finished it.
  return waitFor(async () => {
    const ls = await shell.run('postern recordings ls --format json');
    const list = JSON.parse(ls.stdout || '[]') as Array<{ id: string; status: string; startedAt: string }>;
    return list.find((x) => x.status === 'complete')?.id;
  }, { what: 'a complete recording', timeoutMs: 30_000, intervalMs: 250 });
}

test('README "Session recordings": recordings ls, play on a terminal (also faster), --format text and cast, as written', async () => {
  await recordedSession('rec');
  const [ls, play, faster, text, cast, ...rest] = readmeBlock('Session recordings');
  assert.equal(rest.length, 0);
  const list = await run(ls);
  assert.match(list.stdout, /alice\s+web1\s+/);
  const id = idFrom(list.stdout, /alice\s+web1/);
  for (const line of [play, faster]) {
    const t = onTerminal(line.text, { id });
    assert.equal(await t.exited, 0, `${line.text}\n${t.screen()}`);
    assert.match(t.screen(), /rec-42/);
  }
  const transcript = await run(text, { id });
  assert.match(transcript.stdout, /rec-42/);
  await run(cast, { id });
  const file = readFileSync(join(shell.cwd, 's.cast'), 'utf8').split('\n');
  assert.equal((JSON.parse(file[0]) as { version: number }).version, 2);
  assert.match(file.slice(1).join('\n'), /rec-42/);
});

test('--help examples of recordings ls and play, as written (play by an id prefix, | less, && asciinema play)', async () => {
  const examples = (await helpExamples()).filter((e) => e.command === 'recordings ls' || e.command === 'play').map((e) => e.text);
  assert.ok(examples.length >= 6, examples.join('\n'));
  const id = await recordedSession('helpplay');
  for (const line of examples) {
    if (/asciinema play/.test(line) || /^postern play ID$/.test(line) || /--speed/.test(line)) {
      // Playback is for a terminal.
      const t = onTerminal(line, { id });
      assert.equal(await t.exited, 0, `${line}\n${t.screen()}`);
      assert.match(t.screen(), /helpplay-42|rec-42/);
      continue;
    }
    const r = await run(line, { id });
    if (/--format text/.test(line)) assert.match(r.stdout, /helpplay-42/);
  }
  assert.ok(examples.some((l) => /asciinema play session\.cast/.test(l)));
});

test('README "Live sessions and join" and the --help of sessions ls and join: observer, peer on a terminal, peer from a pipe, as written', async () => {
  // alice's own shell on web1: a live session (the proxy carries every session in recording mode).
  const owner = onTerminal('postern ssh -A web1');
  try {
    owner.type('echo owner-$((6*7))\r');
    await owner.waitFor('owner-42');
    const lines = readmeBlock('Live sessions and join').map((l) => l.command);
    const help = (await helpExamples()).filter((e) => e.command === 'sessions ls' || e.command === 'join').map((e) => e.text);
    assert.equal(lines.length, 4);
    assert.ok(help.length >= 5, help.join('\n'));
    let id = '';
    for (const line of [...lines, ...help]) {
      if (/^postern sessions ls$/.test(line)) {
        const r = await run(line);
        id = idFrom(r.stdout, /alice\s+web1|web1\s+.*alice/);
        continue;
      }
      assert.ok(id, 'sessions ls came first');
      const mark = `m${Math.random().toString(36).slice(2, 8)}`;
      const from = owner.screen().length;
      if (/--mode observer$/.test(line)) {
        // Watch: what the owner types shows here; Ctrl-C leaves.
        const t = onTerminal(line, { id });
        await t.waitFor('joined session');
        owner.type(`echo ${mark}-$((6*7))\r`);
        await t.waitFor(`${mark}-42`);
        t.type('\x03');
        assert.equal(await t.exited, 0, `${line}\n${t.screen()}`);
      } else if (/^postern join \S+ --mode peer$/.test(line)) {
        // Share the keyboard: what the peer types runs in the owner's shell; ~. leaves.
        const t = onTerminal(line, { id });
        await t.waitFor('joined session');
        t.type(`echo ${mark}-$((6*7))\r`);
        await owner.waitFor(`${mark}-42`, { from });
        t.type('\r~.');
        assert.equal(await t.exited, 0, `${line}\n${t.screen()}`);
      } else if (/^echo uptime \| postern join \S+ --mode peer$/.test(line)) {
        // No terminal: stdin is typed into the session, and its end leaves.
        await run(line, { id });
        await owner.waitFor(/load average/, { from });
      } else {
        assert.fail(`an example this test does not know how to run: ${line}`);
      }
    }
  } finally {
    owner.type('exit\r');
    await Promise.race([owner.exited, new Promise((r) => setTimeout(r, 10_000))]);
    owner.kill();
  }
});

test('--help examples of ls, as written', async () => {
  const examples = (await helpExamples()).filter((e) => e.command === 'ls').map((e) => e.text);
  assert.equal(examples.length, 5, examples.join('\n'));
  const want: Record<string, RegExp> = {
    'postern ls': /web1[\s\S]*web2|web2[\s\S]*web1/,
    'postern ls env=prod team=db': /^No nodes|^$/m,
    'postern ls web': /web1/,
    'postern ls prod db env=eu': /^No nodes|^$/m,
    'postern ls --format names': /^(db1|web1|web2)\n(db1|web1|web2)\n(db1|web1|web2)\n$/,
  };
  for (const line of examples) {
    const r = await run(line);
    assert.ok(want[line], `an expectation for ${line}`);
    assert.match(r.stdout + r.stderr, want[line], `${line}\n${r.stdout}${r.stderr}`);
  }
});

test('proxy ssh --help: its ProxyCommand line (--proxy HOST:3080) carries ssh to a node', async () => {
  const line = (await helpExamples()).find((e) => e.command === 'proxy ssh' && /ProxyCommand|^postern proxy ssh/.test(e.text));
  assert.ok(line, 'proxy ssh --help shows a ProxyCommand');
  // The rest of the block is what postern config writes: the login's known_hosts for the host certificates.
  const config = join(shell.home, '.ssh', 'config');
  writeFileSync(config, [
    'Host *.test.example',
    `    ProxyCommand ${localize(line.text)}`,
    `    UserKnownHostsFile ${join(shell.home, '.tsh', 'keys', '127.0.0.1', 'known_hosts')}`,
    '    StrictHostKeyChecking yes',
    '    BatchMode yes',
    '    ForwardAgent yes',
    '',
  ].join('\n'));
  const r = await shell.run(`ssh ${LOCAL_USER}@web1.test.example 'echo pc-$((6*7))'`, { env: { SSH_AUTH_SOCK: agentSock } });
  ok(r, line.text, readFileSync(config, 'utf8'));
  assert.equal(r.stdout, 'pc-42\n');
});

// Last: its login takes alice's fourth TOTP code, and auth accepts three steps at a time, each
// once per user; her signup and two logins in the first test used them, and while the tests
// above ran the next step came, so nothing waits for it.
test('postern --help: "postern login --proxy HOST --user NAME, then postern status", as written', async () => {
  const examples = (await helpExamples()).filter((e) => e.command === '' && /^postern (login|status)\b/.test(e.text)).map((e) => e.text);
  assert.deepEqual(examples, ['postern login --proxy HOST --user NAME', 'postern status']);
  // The CA pin of the first login is remembered in the profile: HOST and NAME are all it takes.
  const screen = await login(examples[0].replace('HOST', c.serve.web).replace('NAME', USER));
  assert.match(screen, /Logged in as: alice/);
  assert.match((await run(examples[1])).stdout, /Logged in as: alice/);
});

/**
 * CLI polish, against a real `postern serve`: `ls KEYWORD` (name, address,
 * labels), bash completion from the ls cache a real `ls` wrote, `audit --type` refusing
 * unknown types, `settings set` suggesting a near name, `play` by a unique id prefix and by
 * a live session id, no EPIPE trace when the reader goes away, QR codes and colour only on
 * a terminal, and `signup` on a terminal asking again after a short or unrepeated password
 * and a wrong code.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, TEST_PASSWORD } from '../helpers/cluster.ts';
import { runPostern, POSTERN_BIN } from '../helpers/cli.ts';
import { oathtoolCode } from '../helpers/openssh.ts';
import { main } from '../../src/cli/main.ts';
import type { Deps } from '../../src/cli/deps.ts';
import { noSignals, realClients } from '../../src/cli/deps.ts';
import { systemClock } from '../../src/core/clock.ts';
import { generateDocs } from '../../scripts/docs.ts';
import { joinCluster, remoteAuthClient } from '../../src/auth/remote-client.ts';
import type { AuthClient } from '../../src/api/auth-client.ts';
import type { IdentityFile } from '../../src/core/server-paths.ts';
import { Recorder } from '../../src/proxy/recorder.ts';
import { newTlsKeyPair } from '../../src/core/tls-keys.ts';
import { parseHostPort } from '../../src/core/text.ts';

const c = new TestCluster();
let home: string;
let proxyAuth: AuthClient | undefined;
const asAlice = (args: string[]): ReturnType<typeof runPostern> => runPostern(args, { env: { TSH_HOME: home } });

before(async () => {
  await c.start();
  home = await c.user('alice', 'ubuntu', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  await c.node('web1', 'env=prod,team=web', { start: false });
  await c.node('db1', 'env=dev,team=db', { start: false });
});
after(async () => {
  await proxyAuth?.close();
  await c.stop();
});

const names = async (args: string[]): Promise<string[]> => {
  const r = await asAlice(['ls', ...args, '--format', 'names']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
};

test('ls KEYWORD searches names, addresses and labels like tsh ls; keywords and selectors combine', async () => {
  assert.deepEqual(await names(['web']), ['web1']);
  assert.deepEqual(await names(['PROD']), ['web1'], 'case-insensitive, in label values');
  assert.deepEqual(await names(['team=db']), ['db1']);
  assert.deepEqual(await names(['127.0.0.1']), ['db1', 'web1'], 'in addresses');
  assert.deepEqual(await names(['db', 'env=dev']), ['db1']);
  assert.deepEqual(await names(['web', 'env=dev']), []);
  assert.deepEqual(await names(['team', 'web']), ['web1'], 'every keyword must match');
});

test('bash completes ssh user@host from the ls cache a real ls wrote', async () => {
  assert.equal((await asAlice(['ls'])).code, 0);
  const file = join(c.work, 'postern.bash');
  writeFileSync(file, (await generateDocs()).get('completions/postern.bash')!);
  const r = spawnSync('bash', ['--norc', '--noprofile', '-i', '-c',
    `source '${file}'; complete -p postern >&2; COMP_LINE='postern ssh ubuntu@w'; COMP_POINT=\${#COMP_LINE}; COMP_WORDS=(postern ssh ubuntu@w); COMP_CWORD=2; _postern; printf '%s\\n' "\${COMPREPLY[@]}"`,
  ], { encoding: 'utf8', env: { PATH: process.env.PATH, TSH_HOME: home, HOME: '/nonexistent', TERM: 'dumb' } });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n').filter(Boolean), ['ubuntu@web1']);
});

test('audit --type refuses an unknown type with a suggestion and the list; settings set suggests a near name', async () => {
  const bad = await c.admin(['audit', '--type', 'user.logn']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /error: unknown audit event type "user\.logn"/);
  assert.match(bad.stderr, /hint: Did you mean user\.login\? Types: access\.denied, .*user\.unlocked/);
  const prefix = await c.admin(['audit', '--type', 'user', '--format', 'json']);
  assert.equal(prefix.code, 0, prefix.stderr);
  assert.ok((JSON.parse(prefix.stdout) as Array<{ type: string }>).some((e) => e.type === 'user.created'));
  const typo = await c.admin(['settings', 'set', 'sesion_recording', 'proxy']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /error: unknown setting "sesion_recording"/);
  assert.match(typo.stderr, /hint: Did you mean session_recording\?/);
  assert.match((await c.admin(['settings', 'show'])).stdout, /session_recording\s+off/, 'nothing changed');
});

test('play takes a unique id prefix and a live session id; an unknown one is a clear error', async () => {
  const tok = JSON.parse((await c.admin(['tokens', 'add', '--type', 'proxy', '--format', 'json'])).stdout) as { token: string; caPin: string };
  const { keyPem, publicKeyPem } = newTlsKeyPair();
  const addr = parseHostPort(c.serve.auth, 3025);
  const joined = await joinCluster(addr, tok.caPin, { token: tok.token, name: 'polish-test-proxy', publicKeyPem });
  const identity: IdentityFile = { authAddr: c.serve.auth, clusterName: joined.clusterName, certPem: joined.certPem, keyPem, caPem: joined.caPem };
  proxyAuth = remoteAuthClient(addr, identity);
  const rec = await Recorder.start(proxyAuth, { user: 'alice', node: 'web1', login: 'ubuntu', kind: 'shell', width: 80, height: 24, clientAddr: '127.0.0.1', sessionId: 'live-session-0001' });
  rec.output('$ echo played-by-prefix\r\nplayed-by-prefix\r\n');
  await rec.finish(0);

  const ls = await asAlice(['recordings', 'ls', '--format', 'json']);
  const [meta] = JSON.parse(ls.stdout) as Array<{ id: string }>;
  const byPrefix = await asAlice(['play', meta.id.slice(0, 8), '--format', 'text']);
  assert.equal(byPrefix.code, 0, byPrefix.stderr);
  assert.match(byPrefix.stdout, /played-by-prefix/);
  const bySession = await asAlice(['play', 'live-session-0001', '--format', 'text']);
  assert.equal(bySession.code, 0, bySession.stderr);
  assert.match(bySession.stdout, /played-by-prefix/);
  const none = await asAlice(['play', 'zzzzzzzz']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /error: no recording or live session you may play matches "zzzzzzzz"/);
  const bad = await asAlice(['play', 'a/b']);
  assert.equal(bad.code, 2);
});

test('no EPIPE stack trace when the reader of stdout goes away (postern ls | head -1)', async () => {
  for (const [args, env] of [[['ls'], { TSH_HOME: home }], [['users', 'ls', '--data-dir', c.serve.dataDir], {}]] as const) {
    const child = spawn(process.execPath, [POSTERN_BIN, ...args], { env: { ...process.env, POSTERN_FROM_SOURCE: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.doesNotMatch(err, /EPIPE|node:events|at /, err);
    assert.equal(code, 0, err);
  }
  const shell = spawnSync('sh', ['-c', `"${process.execPath}" "${POSTERN_BIN}" ls | head -1`], { encoding: 'utf8', env: { ...process.env, POSTERN_FROM_SOURCE: '1', TSH_HOME: home } });
  assert.equal(shell.stdout.split('\n').filter(Boolean).length, 1);
  assert.equal(shell.stderr, '');
});

/** Deps whose streams say they are a terminal; stdin is fed by the test. */
function terminalDeps(env: Record<string, string>): { deps: Deps; stdin: PassThrough; out: () => string; err: () => string } {
  const tty = <T extends object>(s: T): T => Object.assign(s, { isTTY: true, columns: 100, rows: 40, setRawMode: () => s });
  const stdin = tty(new PassThrough());
  // A terminal is never ended by a writer (the prompt library ends the stream it pipes to when done).
  const stdout = Object.assign(tty(new PassThrough()), { end() { return stdout; } });
  const stderr = Object.assign(tty(new PassThrough()), { end() { return stderr; } });
  let o = '';
  let e = '';
  stdout.on('data', (d) => { o += d; });
  stderr.on('data', (d) => { e += d; });
  const deps: Deps = { io: { stdin, stdout, stderr }, env, homeDir: '/nonexistent', clock: systemClock, selfCommand: POSTERN_BIN, signals: noSignals, openTerminal: () => undefined, clients: realClients };
  return { deps, stdin, out: () => o, err: () => e };
}

const plain = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

test('signup on a terminal asks again after a short password, a different repeat and a wrong code; the QR code shows only there', async () => {
  const secret = 'KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU';
  const add = await c.admin(['users', 'add', 'hana', '--logins', 'hana', '--format', 'json']);
  const url = (JSON.parse(add.stdout) as { inviteUrl: string }).inviteUrl.replace(/^https:\/\/[^/]+/, `https://${c.serve.web}`);
  const t = terminalDeps({ NO_COLOR: '1' });
  const run = main(['signup', url, '--ca-pin', c.serve.caPin, '--totp-secret', secret], t.deps);
  let seen = 0;
  /** Waits for `text` on stderr after what was seen. */
  const waitFor = async (text: string): Promise<void> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const at = plain(t.err()).indexOf(text, seen);
      if (at >= 0) { seen = at + text.length; break; }
      if (Date.now() > deadline) throw new Error(`no "${text}" on stderr:\n${plain(t.err())}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  /** Waits for the prompt `text`, then types `typed` and Enter. */
  const answer = async (text: string, typed: string): Promise<void> => {
    await waitFor(text);
    t.stdin.write(typed + '\r');
  };
  await answer('New password', 'short');
  await waitFor('password is too short');
  await answer('New password', TEST_PASSWORD);
  await answer('The same password again', 'not the same password at all');
  await waitFor('the two passwords differ; try again');
  await answer('New password', TEST_PASSWORD);
  await answer('The same password again', TEST_PASSWORD);
  const wrong = oathtoolCode(secret, 0) === '000000' ? '111111' : '000000';
  await answer('The current code from the app', wrong);
  await waitFor('does not match the secret');
  await answer('The current code from the app', oathtoolCode(secret, 0));
  assert.equal(await run, 0, plain(t.err()));
  assert.match(t.out(), /Signed up as hana/);
  assert.match(t.out(), /scan the QR code/);
  assert.match(t.out(), /[▀▄█]/, 'the QR code is drawn on a terminal');
  assert.doesNotMatch(t.out(), /\x1b\[/, 'no colour with NO_COLOR');

  // Without a terminal: no QR code, and flags as before.
  const add2 = await c.admin(['users', 'add', 'ivan', '--logins', 'ivan', '--format', 'json']);
  const url2 = (JSON.parse(add2.stdout) as { inviteUrl: string }).inviteUrl.replace(/^https:\/\/[^/]+/, `https://${c.serve.web}`);
  const piped = await runPostern(['signup', url2, '--password-stdin', '--totp-secret', secret, '--otp', oathtoolCode(secret, 0), '--ca-pin', c.serve.caPin], { input: TEST_PASSWORD + '\n' });
  assert.equal(piped.code, 0, piped.stderr);
  assert.doesNotMatch(piped.stdout, /[▀▄█]|scan the QR/);
  assert.match(piped.stdout, /Secret: KRSX/);
});

test('colour only on a terminal without NO_COLOR', async () => {
  const coloured = terminalDeps({});
  await main(['users', 'add', 'jo', '--logins', 'jo', '--data-dir', c.serve.dataDir], coloured.deps);
  assert.match(coloured.out(), /\x1b\[1mjo\x1b\[22m/);
  const noColour = terminalDeps({ NO_COLOR: '1' });
  await main(['users', 'reset', 'jo', '--data-dir', c.serve.dataDir], noColour.deps);
  assert.doesNotMatch(noColour.out(), /\x1b\[/);
  const piped = await c.admin(['users', 'reset', 'jo']);
  assert.doesNotMatch(piped.stdout, /\x1b\[/);
});

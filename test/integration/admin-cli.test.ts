/**
 * The admin's side against a real `postern serve`: `users update` (set, add,
 * remove; refusals; audited), `users unlock` after a real lockout (the lockout's hint names
 * it; audited), `tokens ls|rm`, `users add` printing the signup command with the CA pin,
 * admin commands finding the cluster of `npm start` (./.postern/data) without --data-dir,
 * and serve's log format (JSON when piped, pino-pretty's lines with --log-format text).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestCluster, TEST_PASSWORD } from '../helpers/cluster.ts';
import { runMain, runPostern } from '../helpers/cli.ts';
import { startServe } from '../helpers/serve.ts';
import { oathtoolCode, LOCAL_USER } from '../helpers/openssh.ts';

const c = new TestCluster();
before(async () => { await c.start(); });
after(() => c.stop());

interface User { name: string; roles: string[]; logins: string[]; status: string }
async function user(name: string): Promise<User | undefined> {
  const ls = await c.admin(['users', 'ls', '--format', 'json']);
  assert.equal(ls.code, 0, ls.stderr);
  return (JSON.parse(ls.stdout) as User[]).find((u) => u.name === name);
}
async function audit(type: string): Promise<Array<Record<string, unknown>>> {
  const r = await c.admin(['audit', '--type', type, '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Array<Record<string, unknown>>;
}

test('users add prints the signup command with the CA pin the user needs', async () => {
  const text = await c.admin(['users', 'add', 'erin', '--logins', 'erin']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`postern signup https://\\S+/web/invite/\\S+ --ca-pin ${c.serve.caPin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n`));
  const json = await c.admin(['users', 'reset', 'erin', '--format', 'json']);
  assert.equal((JSON.parse(json.stdout) as { caPin: string }).caPin, c.serve.caPin);
});

test('users update sets, adds and removes roles and logins, refuses what cannot be, and is audited', async () => {
  assert.equal((await c.admin(['roles', 'add', 'dev', '--logins', 'ubuntu', '--node-labels', 'env=dev'])).code, 0);
  assert.equal((await c.admin(['users', 'add', 'fred', '--logins', 'fred'])).code, 0);
  const add = await c.admin(['users', 'update', 'fred', '--add-roles', 'dev', '--add-logins', 'deploy,ops']);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, /User fred updated: roles access,dev; logins fred,deploy,ops\./);
  assert.deepEqual(await user('fred').then((u) => [u?.roles, u?.logins]), [['access', 'dev'], ['fred', 'deploy', 'ops']]);

  const json = await c.admin(['users', 'update', 'fred', '--set-roles', 'dev', '--remove-logins', 'ops', '--format', 'json']);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual((JSON.parse(json.stdout) as User).roles, ['dev']);
  assert.deepEqual(await user('fred').then((u) => u?.logins), ['fred', 'deploy']);

  const unknownRole = await c.admin(['users', 'update', 'fred', '--add-roles', 'nope']);
  assert.equal(unknownRole.code, 1);
  assert.match(unknownRole.stderr, /error: unknown role "nope"/);
  const noRole = await c.admin(['users', 'update', 'fred', '--remove-roles', 'dev']);
  assert.match(noRole.stderr, /error: fred would have no role left/);
  const noLogin = await c.admin(['users', 'update', 'fred', '--set-logins', '']);
  assert.match(noLogin.stderr, /error: a user needs at least one login/);
  const nothing = await c.admin(['users', 'update', 'fred']);
  assert.equal(nothing.code, 2);
  assert.match(nothing.stderr, /error: nothing to change/);
  const nobody = await c.admin(['users', 'update', 'nobody', '--add-roles', 'dev']);
  assert.match(nobody.stderr, /error: user "nobody" does not exist/);
  assert.deepEqual(await user('fred').then((u) => [u?.roles, u?.logins]), [['dev'], ['fred', 'deploy']], 'refusals change nothing');

  const events = (await audit('user.updated')).filter((e) => e.target === 'fred');
  assert.equal(events.length, 2);
  assert.deepEqual(events.map((e) => e.roles).sort(), [['access', 'dev'], ['dev']]);
});

test('a locked user: the hint names users unlock, which ends the lock (audited) and the right password works again', async () => {
  assert.equal((await c.admin(['settings', 'set', 'lockout_attempts', '2'])).code, 0);
  const secret = 'ONSWG4TFOQYTEMZUGU3DOOBZGAYTEMZU';
  const home = await c.user('gina', LOCAL_USER, secret);
  const login = (password: string, otp: string): ReturnType<typeof runPostern> =>
    runPostern(['login', '--proxy', c.serve.web, '--user', 'gina', '--password-stdin', '--otp', otp, '--ca-pin', c.serve.caPin, '--add-keys-to-agent', 'no'],
      { env: { TSH_HOME: home }, input: password + '\n' });
  for (let i = 0; i < 2; i++) assert.equal((await login('wrong password here', '000000')).code, 1);
  const locked = await login(TEST_PASSWORD, oathtoolCode(secret, 1));
  assert.match(locked.stderr, /error: too many failed logins/);
  assert.match(locked.stderr, /hint: .*postern users unlock NAME/);
  assert.doesNotMatch(locked.stderr, /users reset/);
  assert.equal((await user('gina'))?.status, 'locked');

  const unlock = await c.admin(['users', 'unlock', 'gina']);
  assert.equal(unlock.code, 0, unlock.stderr);
  assert.match(unlock.stdout, /User gina unlocked/);
  assert.equal((await user('gina'))?.status, 'active', 'password and second factor stay');
  const again = await login(TEST_PASSWORD, await c.freshCode('gina', secret));
  assert.equal(again.code, 0, again.stderr);
  const events = (await audit('user.unlocked')).filter((e) => e.target === 'gina');
  assert.equal(events.length, 1);
  assert.equal(events[0].success, true);
  assert.match(String(events[0].lockedUntil), /^\d{4}-/);
  assert.match((await c.admin(['users', 'unlock', 'nobody'])).stderr, /error: user "nobody" does not exist/);
});

test('tokens ls shows live tokens by id, never the token; tokens rm removes one (by id prefix, or the token itself)', async () => {
  const empty = await c.admin(['tokens', 'ls']);
  assert.equal(empty.code, 0, empty.stderr);
  assert.match(empty.stderr, /No join tokens/);
  const made = [0, 1].map(async () => JSON.parse((await c.admin(['tokens', 'add', '--type', 'proxy', '--format', 'json'])).stdout) as { token: string; id: string });
  const [t1, t2] = await Promise.all(made);
  assert.match(t1.id, /^[0-9a-f]{16}$/);
  const ls = await c.admin(['tokens', 'ls', '--format', 'json']);
  const list = JSON.parse(ls.stdout) as Array<{ id: string; type: string }>;
  assert.equal(list.length, 2);
  assert.deepEqual(list.map((t) => t.id).sort(), [t1.id, t2.id].sort(), 'tokens add names the id tokens ls shows');
  assert.ok(list.every((t) => /^[0-9a-f]{16}$/.test(t.id) && t.type === 'proxy'));
  assert.ok(!ls.stdout.includes(t1.token) && !ls.stdout.includes(t2.token), 'the token itself is never shown');
  const text = await c.admin(['tokens', 'ls']);
  assert.match(text.stdout, /^ID\s+Type\s+Created\s+Expires/);

  const rm = await c.admin(['tokens', 'rm', list[0].id.slice(0, 10)]);
  assert.equal(rm.code, 0, rm.stderr);
  const left = JSON.parse((await c.admin(['tokens', 'ls', '--format', 'json'])).stdout) as Array<{ id: string }>;
  assert.deepEqual(left.map((t) => t.id), [list[1].id]);
  // The other by the token itself: the one whose hash starts with the id left.
  const other = [t1, t2].find((t) => createHash('sha256').update(t.token).digest('hex').startsWith(list[1].id))!;
  const byToken = await c.admin(['tokens', 'rm', other.token]);
  assert.equal(byToken.code, 0, byToken.stderr);
  assert.match((await c.admin(['tokens', 'ls'])).stderr, /No join tokens/);
  const gone = await c.admin(['tokens', 'rm', list[0].id]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /error: no join token with id/);
  assert.equal((await audit('token.deleted')).length, 2);
});

test('admin commands find the cluster of npm start (.postern/data in this directory or a parent) without --data-dir, or say what to pass', async () => {
  const project = mkdtempSync(join(tmpdir(), 'postern-project-'));
  mkdirSync(join(project, '.postern'));
  symlinkSync(c.serve.dataDir, join(project, '.postern', 'data'));
  const sub = join(project, 'src', 'deep');
  mkdirSync(sub, { recursive: true });
  const env = { POSTERN_DATA_DIR: undefined };
  const found = await runMain(['users', 'ls', '--format', 'json'], { cwd: sub, homeDir: mkdtempSync(join(tmpdir(), 'postern-home-')), env });
  assert.equal(found.code, 0, found.stderr);
  assert.ok((JSON.parse(found.stdout) as User[]).some((u) => u.name === 'fred'));

  const nowhere = mkdtempSync(join(tmpdir(), 'postern-nowhere-'));
  const missing = await runMain(['users', 'ls'], { cwd: nowhere, homeDir: nowhere, env });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /error: no admin identity in .* or .*\.postern\/data/);
  assert.match(missing.stderr, /hint: .*--data-dir/);
});

test('serve logs JSON when stderr is not a terminal, and readable lines with --log-format text', async () => {
  const json = await startServe();
  try {
    await json.stop();
    const first = json.stderr().split('\n').find(Boolean);
    assert.ok(first, 'serve logged something');
    assert.doesNotThrow(() => JSON.parse(first), first);
  } finally { await json.stop(); }
  const text = await startServe({ args: ['--web-addr', '127.0.0.1:0', '--auth-addr', '127.0.0.1:0', '--ssh-addr', '127.0.0.1:0', '--log-format', 'text'] });
  try {
    await text.stop();
    const lines = text.stderr().split('\n').filter(Boolean);
    assert.ok(lines.length > 0);
    assert.match(lines.join('\n'), /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: /m);
    assert.ok(lines.every((l) => !l.startsWith('{')), lines.join('\n'));
    assert.doesNotMatch(lines.join('\n'), /\x1b\[/, 'no colour with NO_COLOR or off a terminal');
  } finally { await text.kill().catch(() => {}); }
});

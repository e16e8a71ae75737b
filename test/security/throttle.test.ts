/**
 * Login throttling, against a real `postern serve`: a flood of 100
 * concurrent logins for unknown names from one source address gets 429 with Retry-After
 * beyond the per-source limit, while a real `postern login` from another address goes
 * through; the per-name limit holds across addresses and the CLI says it clearly; sign-ups
 * are throttled too. Loopback has many addresses (127.0.0.0/8), so the flood comes from
 * 127.0.0.2 and up while the CLI connects from 127.0.0.1.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { startServe } from '../helpers/serve.ts';
import type { ServeProcess } from '../helpers/serve.ts';
import { runPostern } from '../helpers/cli.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { generateKeyPair, formatAuthorizedKey } from '../../src/ssh/keys.ts';
import type { ErrorBody } from '../../src/api/types.ts';

const PASSWORD = 'correct horse battery staple';
const PER_SOURCE = 10;
const publicKey = formatAuthorizedKey(generateKeyPair().publicWire, 'flood');
let serve: ServeProcess;

/** POSTs JSON over HTTPS from `source` (a loopback address: node's localAddress, which undici's Agent does not pass on). */
function post(source: string, path: string, body: unknown): Promise<{ status: number; retryAfter: string | undefined; json: ErrorBody }> {
  const [host, port] = serve.web.split(':');
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host, port: Number(port), path, method: 'POST', localAddress: source, rejectUnauthorized: false, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        const ra = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, retryAfter: typeof ra === 'string' ? ra : undefined, json: (text ? JSON.parse(text) : {}) as ErrorBody });
      });
    });
    req.on('error', reject);
    req.setTimeout(60_000, () => req.destroy(new Error(`no answer to ${path}`)));
    req.end(JSON.stringify(body));
  });
}

async function realLogin(user: string): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t = Date.now();
  const r = await runPostern(['login', '--proxy', serve.web, '--user', user, '--password-stdin', '--ca-pin', serve.caPin, '--add-keys-to-agent', 'no'],
    { env: { TSH_HOME: mkdtempSync(join(tmpdir(), 'postern-tsh-')) }, input: `${PASSWORD}\n` });
  return { code: r.code, stderr: r.stderr, ms: Date.now() - t };
}

before(async () => {
  serve = await startServe({ args: ['--web-addr', '127.0.0.1:0', '--auth-addr', '127.0.0.1:0', '--ssh-addr', '127.0.0.1:0', '--cluster-name', 'test.example', '--second-factor', 'off'] });
  const add = await runPostern(['users', 'add', 'real', '--logins', LOCAL_USER, '--format', 'json', '--data-dir', serve.dataDir]);
  assert.equal(add.code, 0, add.stderr);
  const url = JSON.parse(add.stdout).inviteUrl.replace(/^https:\/\/[^/]+/, `https://${serve.web}`);
  const signup = await runPostern(['signup', url, '--password-stdin', '--ca-pin', serve.caPin], { input: `${PASSWORD}\n` });
  assert.equal(signup.code, 0, signup.stderr);
});

after(async () => {
  await serve?.stop();
});

test('the limits have documented defaults and are cluster settings', async () => {
  const show = await runPostern(['settings', 'show', '--format', 'json', '--data-dir', serve.dataDir]);
  assert.equal(show.code, 0, show.stderr);
  const s = JSON.parse(show.stdout);
  assert.equal(s.login_rate_per_source, 60);
  assert.equal(s.login_rate_per_user, 20);
  const set = await runPostern(['settings', 'set', 'login_rate_per_source', String(PER_SOURCE), '--data-dir', serve.dataDir]);
  assert.equal(set.code, 0, set.stderr);
});

test('100 concurrent logins for unknown names from one address get 429 beyond the limit; a real login from another address goes through', async () => {
  const alone = await realLogin('real');
  assert.equal(alone.code, 0, alone.stderr);
  const started = Date.now();
  const flood = Array.from({ length: 100 }, (_, i) => post('127.0.0.2', '/webapi/ssh/certs', { user: `ghost${i}`, password: 'guess guess guess', publicKey }));
  const real = realLogin('real');
  const answers = await Promise.all(flood);
  const floodSeconds = (Date.now() - started) / 1000;
  const underFlood = await real;
  assert.equal(underFlood.code, 0, `the real login failed under the flood: ${underFlood.stderr}`);
  const limited = answers.filter((a) => a.status === 429);
  const checked = answers.filter((a) => a.status === 401);
  console.log(`# flood of 100 from one address: ${limited.length} x 429, ${checked.length} x 401 (limit ${PER_SOURCE}/min); real login ${alone.ms} ms alone, ${underFlood.ms} ms under the flood (which lasted ${floodSeconds} s)`);
  assert.equal(limited.length + checked.length, 100, JSON.stringify(answers.filter((a) => a.status !== 429 && a.status !== 401)));
  // The bucket refills PER_SOURCE a minute while the flood lasts.
  assert.ok(checked.length <= PER_SOURCE + Math.ceil((floodSeconds * PER_SOURCE) / 60), `${checked.length} reached the password check in ${floodSeconds} s`);
  for (const a of limited) {
    assert.equal(a.json.error.code, 'ERR_POSTERN_RATE_LIMITED');
    assert.match(a.json.error.message, /too many login attempts from 127\.0\.0\.2/);
    assert.match(a.json.error.hint ?? '', /^Wait \d+ s and try again/);
    assert.match(a.retryAfter ?? '', /^[1-9]\d*$/, 'Retry-After in whole seconds');
    assert.equal(Number(a.retryAfter), a.json.error.retryAfter);
  }
});

test('the per-name limit holds across addresses, and the CLI prints the 429 with its hint', async () => {
  // 25 tries for one unknown name, each from its own address: the name's bucket (20 a minute) runs out.
  // The lockout (5 by default) would refuse them first, so it is raised for this test.
  assert.equal((await runPostern(['settings', 'set', 'lockout_attempts', '100', '--data-dir', serve.dataDir])).code, 0);
  const answers = await Promise.all(Array.from({ length: 25 }, (_, i) => post(`127.0.1.${i + 1}`, '/webapi/ssh/certs', { user: 'nobody', password: 'guess guess guess', publicKey })));
  assert.equal(answers.filter((a) => a.status === 429).length, 5, JSON.stringify(answers.map((a) => a.status)));
  assert.ok(answers.filter((a) => a.status === 429).every((a) => a.json.error.code === 'ERR_POSTERN_RATE_LIMITED'));
  // The bucket refills one every 3 s, about what starting the CLI takes: at one a minute it stays empty for the CLI.
  assert.equal((await runPostern(['settings', 'set', 'login_rate_per_user', '1', '--data-dir', serve.dataDir])).code, 0);
  const cli = await realLogin('nobody');
  assert.equal(cli.code, 1, cli.stderr);
  assert.match(cli.stderr, /^error: too many login attempts for this user name$/m);
  assert.match(cli.stderr, /^hint: Wait \d+ s and try again; at most 1 per minute are allowed for one user name$/m);
});

test('sign-up attempts are throttled per address too', async () => {
  const answers: number[] = [];
  for (let i = 0; i < PER_SOURCE + 3; i++) answers.push((await post('127.0.0.3', `/webapi/invites/${'x'.repeat(20)}${i}`, { password: PASSWORD })).status);
  assert.deepEqual(answers.slice(0, PER_SOURCE), Array(PER_SOURCE).fill(404), 'unknown invites, checked');
  assert.deepEqual(answers.slice(PER_SOURCE), [429, 429, 429]);
});

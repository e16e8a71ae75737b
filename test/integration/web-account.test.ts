/**
 * The web API's account calls against a real serve: a web login sets the cookie; changing
 * the password needs the current one and the CSRF token, after which only the new one logs
 * in; re-enrolling TOTP needs a code of the new secret (from oathtool); logout revokes the
 * session; malformed requests get a 400 with a message. The cluster runs with
 * `second_factor: off` so that each step needs no fresh TOTP step.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { startServe } from '../helpers/serve.ts';
import type { ServeProcess } from '../helpers/serve.ts';
import { runPostern } from '../helpers/cli.ts';
import { LOCAL_USER, oathtoolCode } from '../helpers/openssh.ts';

const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'a quite different passphrase';
let serve: ServeProcess;
const dispatcher = new Agent({ connect: { rejectUnauthorized: false } });

async function call(method: string, path: string, opts: { body?: unknown; cookie?: string; csrf?: string; raw?: string } = {}): Promise<{ status: number; json: ReturnType<typeof JSON.parse>; setCookie: string }> {
  const res = await request(`https://${serve.web}${path}`, {
    method: method as 'GET', dispatcher,
    headers: {
      ...(opts.body !== undefined || opts.raw !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(opts.cookie ? { cookie: opts.cookie } : {}),
      ...(opts.csrf ? { 'x-csrf-token': opts.csrf } : {}),
    },
    body: opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body)),
  });
  const text = await res.body.text();
  const setCookie = String(res.headers['set-cookie'] ?? '');
  return { status: res.statusCode, json: text ? JSON.parse(text) : undefined, setCookie };
}

async function webLogin(password: string): Promise<{ status: number; cookie: string; csrf: string; json: ReturnType<typeof JSON.parse> }> {
  const r = await call('POST', '/webapi/sessions/web', { body: { user: 'olga', password } });
  const cookie = /(__Host-postern_session=[^;]+)/.exec(r.setCookie)?.[1] ?? '';
  return { status: r.status, cookie, csrf: r.json?.csrfToken, json: r.json };
}

before(async () => {
  serve = await startServe({ args: ['--web-addr', '127.0.0.1:0', '--auth-addr', '127.0.0.1:0', '--ssh-addr', '127.0.0.1:0', '--cluster-name', 'test.example', '--second-factor', 'off'] });
  const add = await runPostern(['users', 'add', 'olga', '--logins', LOCAL_USER, '--format', 'json', '--data-dir', serve.dataDir]);
  const url = JSON.parse(add.stdout).inviteUrl.replace(/^https:\/\/[^/]+/, `https://${serve.web}`);
  const signup = await runPostern(['signup', url, '--password-stdin', '--ca-pin', serve.caPin], { input: `${PASSWORD}\n` });
  assert.equal(signup.code, 0, signup.stderr);
});

after(async () => {
  await dispatcher.close();
  await serve?.stop();
});

test('password change: needs the current password and the CSRF token; then only the new password works', async () => {
  const s = await webLogin(PASSWORD);
  assert.equal(s.status, 200, JSON.stringify(s.json));
  assert.match(s.cookie, /^__Host-postern_session=[A-Za-z0-9_-]{43}$/);
  assert.equal(s.json.sessionId, undefined, 'the id travels only in the cookie');
  const noCsrf = await call('POST', '/webapi/account/password', { cookie: s.cookie, body: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD } });
  assert.equal(noCsrf.status, 403);
  assert.equal(noCsrf.json.error.code, 'ERR_POSTERN_CSRF');
  const wrong = await call('POST', '/webapi/account/password', { cookie: s.cookie, csrf: s.csrf, body: { currentPassword: 'not my password', newPassword: NEW_PASSWORD } });
  assert.equal(wrong.status, 401);
  const ok = await call('POST', '/webapi/account/password', { cookie: s.cookie, csrf: s.csrf, body: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD } });
  assert.equal(ok.status, 204, JSON.stringify(ok.json));
  assert.equal((await webLogin(PASSWORD)).status, 401);
  assert.equal((await webLogin(NEW_PASSWORD)).status, 200);
});

test('TOTP re-enrolment: a new secret, confirmed with a code of it (oathtool); a wrong code is refused', async () => {
  const s = await webLogin(NEW_PASSWORD);
  const begin = await call('POST', '/webapi/account/totp', { cookie: s.cookie, csrf: s.csrf, body: { currentPassword: NEW_PASSWORD } });
  assert.equal(begin.status, 200, JSON.stringify(begin.json));
  assert.match(begin.json.otpauthUri, /^otpauth:\/\/totp\/.*secret=/);
  const bad = await call('PUT', '/webapi/account/totp', { cookie: s.cookie, csrf: s.csrf, body: { enrolId: begin.json.enrolId, otp: '000000' } });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /does not match/);
  const good = await call('PUT', '/webapi/account/totp', { cookie: s.cookie, csrf: s.csrf, body: { enrolId: begin.json.enrolId, otp: oathtoolCode(begin.json.totpSecret, 0) } });
  assert.equal(good.status, 204, JSON.stringify(good.json));
  const audit = await runPostern(['audit', '--user', 'olga', '--format', 'json', '--data-dir', serve.dataDir]);
  const types = (JSON.parse(audit.stdout) as Array<{ type: string }>).map((e) => e.type);
  for (const t of ['web.session.create', 'user.password', 'user.totp']) assert.ok(types.includes(t), `${t} in ${types.join(', ')}`);
});

test('logout revokes the session; malformed requests get a 400 with a message, never a 500', async () => {
  const s = await webLogin(NEW_PASSWORD);
  assert.equal((await call('GET', '/webapi/sessions/web', { cookie: s.cookie })).status, 200);
  const out = await call('DELETE', '/webapi/sessions/web', { cookie: s.cookie, csrf: s.csrf });
  assert.equal(out.status, 204);
  assert.match(out.setCookie, /__Host-postern_session=; .*Expires=Thu, 01 Jan 1970/);
  const after = await call('GET', '/webapi/sessions/web', { cookie: s.cookie });
  assert.equal(after.status, 401);
  assert.equal(after.json.error.code, 'ERR_POSTERN_SESSION_EXPIRED');
  for (const [method, path, raw] of [
    ['POST', '/webapi/sessions/web', '{"user":'],
    ['POST', '/webapi/sessions/web', '{"user":"olga"}'],
    ['POST', '/webapi/sessions/web', '{"user":"olga","password":"x","extra":1}'],
  ] as const) {
    const r = await call(method, path, { raw });
    assert.equal(r.status, 400, `${raw}: ${JSON.stringify(r.json)}`);
    assert.ok(r.json.error.message.length > 0);
  }
  const badQuery = await call('GET', '/webapi/audit?limit=lots', { cookie: (await webLogin(NEW_PASSWORD)).cookie });
  assert.equal(badQuery.status, 400);
});

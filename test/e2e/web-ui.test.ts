/**
 * The web UI end to end in headless Chromium against a real `postern serve` and real sshd
 * nodes: sign up from an invite (TOTP from the secret on the page), log in, the nodes the
 * role allows and only those, a terminal (echo, resize and `tput cols`), a second browser
 * joining as observer (sees, cannot type) and peer (types), the recording in the list and
 * the player, the downloaded .cast, and the refusals (wrong password, wrong code, expired
 * session, forged cookie, websocket from another Origin). Screenshots of every page go to
 * test-output/screenshots/.
 */
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import WebSocket from 'ws';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { TestCluster, TEST_PASSWORD } from '../helpers/cluster.ts';
import { runPostern } from '../helpers/cli.ts';
import { LOCAL_USER, oathtoolCode } from '../helpers/openssh.ts';
import { launchBrowser, screenshot } from '../helpers/browser.ts';
import { ensureWebBuilt } from '../../scripts/build-web.ts';
import { waitFor } from '../helpers/wait.ts';
import { scenario } from '../helpers/steps.ts';

const c = new TestCluster();
let browser: Browser;
let origin: string;
let carol: { ctx: BrowserContext; page: Page; secret: string };
let dave: { ctx: BrowserContext; page: Page; secret: string };
let sessionId = '';
// Steps 2-4 share one live terminal and its recording: a step whose prerequisite did not pass is skipped, saying so.
const step = scenario();

/** The text xterm shows (its DOM renderer's rows). */
async function screenText(page: Page, testid = 'terminal'): Promise<string> {
  return page.locator(`[data-testid="${testid}"] .xterm-rows`).innerText();
}

async function waitScreen(page: Page, re: RegExp, testid = 'terminal', ms = 30_000): Promise<string> {
  let text = '';
  const m = await waitFor(async () => re.exec(text = await screenText(page, testid).catch(() => '')), {
    what: `the screen to show ${re}`, timeoutMs: ms, intervalMs: 100, detail: () => `the screen showed:\n${text}`,
  });
  return m[0];
}

/** The width xterm gave its screen (cols × cell width), which changes when a resize reached it. */
function screenWidth(page: Page): Promise<string> {
  return page.locator('[data-testid="terminal"] .xterm-screen').evaluate((e) => (e as HTMLElement).style.width);
}

async function invite(name: string, roles: string): Promise<string> {
  const add = await c.admin(['users', 'add', name, '--logins', LOCAL_USER, '--roles', roles, '--format', 'json']);
  assert.equal(add.code, 0, add.stderr);
  return (JSON.parse(add.stdout) as { inviteUrl: string }).inviteUrl.replace(/^https:\/\/[^/]+/, origin);
}

async function login(page: Page, user: string, password: string, otp: string): Promise<void> {
  await page.goto(`${origin}/web/login`);
  await page.getByLabel('User').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByLabel('Code from your authenticator app').fill(otp);
  await page.getByRole('button', { name: 'Log in' }).click();
}

before(async () => {
  await ensureWebBuilt();
  await c.start();
  origin = `https://${c.serve.web}`;
  const role = join(c.work, 'prod-only.yaml');
  writeFileSync(role, 'name: prod-only\nlogins: ["{{internal.logins}}"]\nnode_labels:\n  env: [prod]\n');
  assert.equal((await c.admin(['roles', 'add', '--file', role])).code, 0);
  await c.node('web1', 'env=prod');
  await c.node('db1', 'env=dev', { start: false });
  browser = await launchBrowser();
  const newCtx = (): Promise<BrowserContext> => browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  carol = { ctx: await newCtx(), page: undefined as unknown as Page, secret: '' };
  carol.page = await carol.ctx.newPage();
  dave = { ctx: await newCtx(), page: undefined as unknown as Page, secret: '' };
  dave.page = await dave.ctx.newPage();
});

after(async () => {
  await browser?.close();
  await c.stop();
});

step('1', '1. an invited user sets a password, enrols TOTP from the page, logs in and sees only the nodes the role allows', [], async () => {
  const page = carol.page;
  await page.goto(await invite('carol', 'prod-only'));
  const secret = (await page.getByTestId('totp-secret').innerText()).trim();
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  carol.secret = secret;
  await page.getByLabel('New password').fill(TEST_PASSWORD);
  await page.getByLabel('Repeat it').fill(TEST_PASSWORD);
  await page.getByLabel('Code the app shows').fill(oathtoolCode(secret, 0));
  await screenshot(page, '01-invite');
  await page.getByRole('button', { name: 'Create my account' }).click();
  await page.getByText('Your account is ready.').waitFor();
  await page.getByRole('button', { name: 'Log in' }).click();
  await screenshot(page, '02-login');
  await login(page, 'carol', TEST_PASSWORD, oathtoolCode(secret, 1));
  await page.locator('tr[data-node="web1"]').waitFor();
  assert.equal(await page.locator('tr[data-node="db1"]').count(), 0, 'db1 (env=dev) is not for prod-only');
  const cookies = await carol.ctx.cookies();
  const cookie = cookies.find((k) => k.name === '__Host-postern_session');
  assert.ok(cookie, 'the session cookie is set');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.secure, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.ok(cookie.expires > Date.now() / 1000, 'it expires with the session');
  await screenshot(page, '03-nodes');
  await page.setViewportSize({ width: 375, height: 740 });
  await screenshot(page, '03-nodes-narrow');
  await page.setViewportSize({ width: 1280, height: 800 });
});

step('2', '2. a terminal on the node: echo shows its output, and a resize changes tput cols', ['1'], async () => {
  const page = carol.page;
  await page.locator('tr[data-node="web1"]').getByRole('button', { name: /Connect as/ }).click();
  await page.locator('[data-status="connected"]').waitFor();
  await page.locator('[data-testid="terminal"] .xterm-rows').waitFor();
  await waitScreen(page, /\S/); // the shell's prompt: it is up and reading
  await page.locator('[data-testid="terminal"]').click();
  await page.keyboard.type('echo hello-$RANDOM\n');
  const hello = await waitScreen(page, /hello-\d+/);
  assert.match(hello, /^hello-\d+$/);
  await page.keyboard.type('echo cols-$(tput cols)-x\n');
  const before = Number((await waitScreen(page, /cols-\d+-x/)).slice(5, -2));
  const widthBefore = await screenWidth(page);
  await page.setViewportSize({ width: 900, height: 700 });
  // xterm resizes on the window's resize event and sends the new size before any key typed after it.
  await waitFor(async () => (await screenWidth(page)) !== widthBefore, { what: 'the terminal to take the narrower window', timeoutMs: 10_000 });
  await page.keyboard.type('clear; echo cols-$(tput cols)-y\n');
  const after = Number((await waitScreen(page, /cols-\d+-y/)).slice(5, -2));
  assert.ok(after > 10 && after < before, `tput cols went from ${before} to ${after}`);
  await screenshot(page, '04-terminal');
});

step('3', '3. a second browser joins as observer (sees the output, its keys are not sent), then as peer (its keys are)', ['2'], async () => {
  const page = dave.page;
  const url = await invite('dave', 'admin');
  const secret = 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ';
  const signup = await runPostern(['signup', url, '--password-stdin', '--totp-secret', secret, '--otp', oathtoolCode(secret, 0), '--ca-pin', c.serve.caPin], { input: `${TEST_PASSWORD}\n` });
  assert.equal(signup.code, 0, signup.stderr);
  dave.secret = secret;
  await login(page, 'dave', TEST_PASSWORD, oathtoolCode(secret, 1));
  await page.getByRole('link', { name: 'Sessions' }).click();
  const row = page.locator('tr[data-session]').first();
  await row.waitFor();
  sessionId = (await row.getAttribute('data-session'))!;
  await screenshot(page, '05-sessions');
  await row.getByRole('button', { name: 'Watch' }).click();
  await page.locator('[data-status="connected"]').waitFor();
  await carol.page.locator('.people', { hasText: 'dave (observer)' }).waitFor();

  await carol.page.keyboard.type('echo obs-$((6*7))-seen\n');
  await waitScreen(page, /obs-42-seen/);
  await page.locator('[data-testid="terminal"]').click();
  await page.keyboard.type('echo observer-typed\n');
  await carol.page.keyboard.type('echo after-$((1+1))\n');
  await waitScreen(carol.page, /after-2/);
  assert.equal((await screenText(carol.page)).includes('observer-typed'), false, "an observer's keys never reach the shell");
  await screenshot(page, '06-join-observer');

  await page.goto(`${origin}/web/join/${sessionId}?mode=peer`);
  await page.locator('[data-status="connected"]').waitFor();
  await page.locator('[data-testid="terminal"]').click();
  await page.keyboard.type('echo peer-$((7*6))-typed\n');
  await waitScreen(carol.page, /peer-42-typed/);
  await screenshot(carol.page, '07-terminal-with-peer');
});

step('4', '4. after exit the recording is listed, the player shows the command and its output, and the .cast is asciicast v2', ['2', '3'], async () => {
  const page = carol.page;
  await page.locator('[data-testid="terminal"]').click();
  await page.keyboard.type('exit\n');
  await page.locator('[data-status="ended"]').waitFor();
  await page.getByText(/exit status 0/).waitFor();
  await page.getByRole('link', { name: 'Recordings' }).click();
  const row = page.locator('tr[data-recording]').first();
  await row.waitFor();
  await screenshot(page, '08-recordings');
  const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('link', { name: 'Download .cast' }).click()]);
  const file = await download.path();
  const lines = readFileSync(file!, 'utf8').trim().split('\n');
  const header = JSON.parse(lines[0]) as { version: number; width: number; height: number };
  assert.equal(header.version, 2);
  assert.ok(header.width > 0 && header.height > 0);
  const events = lines.slice(1).map((l) => JSON.parse(l) as [number, string, string]);
  assert.ok(events.length > 0 && events.every((e) => typeof e[0] === 'number' && typeof e[1] === 'string' && typeof e[2] === 'string'));
  assert.ok(events.some((e) => e[1] === 'o' && /hello-\d+/.test(e[2])));
  assert.ok(events.some((e) => e[1] === 'r'), 'the resize is recorded');

  await row.getByRole('button', { name: 'Play' }).click();
  await page.getByLabel('Speed').selectOption('8');
  await page.locator('[data-testid="player"] .xterm-rows').waitFor();
  // The shell clears its screen a moment after the echo, so a look during playback can miss
  // it: pause (in one turn of the page's loop, whether or not playback already ended) and
  // seek to just after the output's time in the .cast (the slider's step is 0.1 s).
  await page.evaluate(() => { const b = [...document.querySelectorAll('.player-bar button')].find((e) => e.textContent === 'Pause') as HTMLButtonElement | undefined; b?.click(); });
  await page.locator('.player-bar').getByRole('button', { name: 'Play' }).waitFor();
  const helloAt = events.find((e) => e[1] === 'o' && /hello-\d+/.test(e[2]))![0];
  await page.getByLabel('Position').fill(String(Math.ceil(helloAt * 10 + 1e-6) / 10));
  await waitScreen(page, /echo hello-\$RANDOM\s+hello-\d+/, 'player', 10_000);
  await screenshot(page, '09-player');
  await dave.page.getByRole('link', { name: 'Audit' }).click();
  await dave.page.locator('td', { hasText: 'session.join' }).first().waitFor();
  await screenshot(dave.page, '10-audit');
  await carol.page.getByRole('link', { name: 'Account' }).click();
  await screenshot(carol.page, '11-account');
});

step('5', '5. refusals: wrong password, wrong code, expired session, forged cookie, websocket from another Origin, missing CSRF', [], async () => {
  // A user of its own, signed up here, so this step stands whatever the steps before it did.
  const secret = 'NBSWY3DPO5XXE3DENBSWY3DP';
  c.newUser('erin');
  const signup = await runPostern(['signup', await invite('erin', 'access'), '--password-stdin', '--totp-secret', secret, '--otp', await c.freshCode('erin', secret), '--ca-pin', c.serve.caPin], { input: `${TEST_PASSWORD}\n` });
  assert.equal(signup.code, 0, signup.stderr);
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  const erinCtx = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  try {
    for (const [password, otp] of [['wrong password!', oathtoolCode(secret, 0)], [TEST_PASSWORD, '000000']]) {
      const res = page.waitForResponse((r) => r.url().endsWith('/webapi/sessions/web') && r.request().method() === 'POST');
      await login(page, 'erin', password, otp);
      assert.equal((await res).status(), 401);
      await page.getByRole('alert').getByText(/invalid user name, password or second factor/).waitFor();
    }
    await screenshot(page, '12-login-refused');

    await ctx.addCookies([{ name: '__Host-postern_session', value: 'A'.repeat(43), url: origin, secure: true, httpOnly: true, sameSite: 'Strict' }]);
    const forged = await page.evaluate(async () => { const r = await fetch('/webapi/sessions/web'); return { status: r.status, body: await r.json() }; });
    assert.equal(forged.status, 401);
    assert.equal(forged.body.error.code, 'ERR_POSTERN_SESSION_EXPIRED');
    await page.goto(`${origin}/web/nodes`);
    await page.getByRole('heading', { name: 'Log in to Postern' }).waitFor();

    // erin logged in, in a browser of her own.
    const erin = await erinCtx.newPage();
    await login(erin, 'erin', TEST_PASSWORD, await c.freshCode('erin', secret));
    await erin.getByRole('heading', { name: 'Nodes' }).waitFor();
    const erinsCookie = (await erinCtx.cookies()).find((k) => k.name === '__Host-postern_session')!.value;

    // Another origin: a websocket with erin's valid cookie but a foreign Origin is refused before the upgrade.
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`wss://${c.serve.web}/webapi/terminal?node=web1&login=${LOCAL_USER}`, { headers: { origin: 'https://evil.example', cookie: `__Host-postern_session=${erinsCookie}` }, rejectUnauthorized: false });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('the websocket opened')));
      ws.on('error', () => {});
    });
    assert.equal(status, 403);
    const noCookie = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`wss://${c.serve.web}/webapi/terminal?node=web1&login=${LOCAL_USER}`, { headers: { origin }, rejectUnauthorized: false });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => {});
    });
    assert.equal(noCookie, 401);

    // A state change without the CSRF token is refused even with the cookie.
    const csrf = await erin.evaluate(async () => (await fetch('/webapi/sessions/web', { method: 'DELETE' })).status);
    assert.equal(csrf, 403);

    // Expired: erin's session record reaches its end (as time would do it); the next request is refused.
    const db = new DatabaseSync(join(c.serve.dataDir, 'postern.db'));
    try {
      const rows = db.prepare("SELECT key, value FROM items WHERE key LIKE 'web_sessions/%'").all() as Array<{ key: string; value: string }>;
      for (const r of rows) {
        const v = JSON.parse(r.value) as { user: string; expiresAt: string };
        if (v.user !== 'erin') continue;
        v.expiresAt = new Date(Date.now() - 1000).toISOString();
        db.prepare('UPDATE items SET value = ? WHERE key = ?').run(JSON.stringify(v), r.key);
      }
    } finally {
      db.close();
    }
    const expired = await erin.evaluate(async () => { const r = await fetch('/webapi/sessions'); return { status: r.status, body: await r.json() }; });
    assert.equal(expired.status, 401);
    assert.match(expired.body.error.message, /expired/);
    await erin.goto(`${origin}/web/sessions`);
    await erin.getByRole('heading', { name: 'Log in to Postern' }).waitFor();
  } finally {
    await ctx.close();
    await erinCtx.close();
  }
});

/**
 * A web terminal joined from another proxy, in headless Chromium (docs/ha.md, "Live sessions
 * across proxies"), in the cluster the HA issue describes: two auth servers on one real
 * PostgreSQL, two proxies A and B each given both, a real sshd node. carol opens a
 * terminal on the node in a browser logged in on proxy A; dave, logged in on proxy B as a
 * load balancer could have sent him, sees it on B's Sessions page, watches it (sees the
 * output, his keys are not sent), then joins as peer (his keys run in carol's shell), each
 * relayed by B to A over mutual TLS. Screenshots: test-output/screenshots/ha-*.png.
 */
import { test, after } from 'node:test';
import { startPostgres } from '../helpers/postgres.ts';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { TestCluster, TEST_PASSWORD } from '../helpers/cluster.ts';
import type { ServeProcess } from '../helpers/serve.ts';
import { startSplitCluster } from '../helpers/live-sessions.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { launchBrowser, screenshot } from '../helpers/browser.ts';
import { ensureWebBuilt } from '../../scripts/build-web.ts';
import { waitFor } from '../helpers/wait.ts';

const c = new TestCluster();
let browser: Browser | undefined;
after(async () => {
  await browser?.close();
  await c.stop();
});

async function screenText(page: Page): Promise<string> {
  return page.locator('[data-testid="terminal"] .xterm-rows').innerText();
}

async function waitScreen(page: Page, re: RegExp, ms = 30_000): Promise<string> {
  let text = '';
  const m = await waitFor(async () => re.exec(text = await screenText(page).catch(() => '')), {
    what: `the screen to show ${re}`, timeoutMs: ms, intervalMs: 100, detail: () => `the screen showed:\n${text}`,
  });
  return m[0];
}

async function webLogin(page: Page, proxy: ServeProcess, user: string, otp: string): Promise<void> {
  await page.goto(`https://${proxy.web}/web/login`);
  await page.getByLabel('User').fill(user);
  await page.getByLabel('Password').fill(TEST_PASSWORD);
  await page.getByLabel('Code from your authenticator app').fill(otp);
  await page.getByRole('button', { name: 'Log in' }).click();
}

test('a web terminal on proxy A is watched and joined from a browser logged in on proxy B', { timeout: 600_000 }, async () => {
  await ensureWebBuilt();
  const pg = await startPostgres({ after });
  const url = await pg.createDatabase();
  const { auths: [auth, auth2], proxies: [pA, pB], through } = await startSplitCluster(c, ['--storage', url], { auths: 2 });
  assert.equal(auth2.caPin, auth.caPin);
  through(pA);
  await c.node('web1', 'env=prod');
  const carolSecret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  const daveSecret = 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ';
  await c.user('carol', LOCAL_USER, carolSecret);
  through(pB);
  await c.user('dave', LOCAL_USER, daveSecret, 'admin');

  browser = await launchBrowser();
  const ctx = { ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } };
  const carol = await (await browser.newContext(ctx)).newPage();
  const dave = await (await browser.newContext(ctx)).newPage();

  // carol's terminal, through proxy A.
  await webLogin(carol, pA, 'carol', await c.freshCode('carol', carolSecret));
  await carol.locator('tr[data-node="web1"]').getByRole('button', { name: /Connect as/ }).click();
  await carol.locator('[data-status="connected"]').waitFor();
  await waitScreen(carol, /\S/);
  await carol.locator('[data-testid="terminal"]').click();
  await carol.keyboard.type('echo on-proxy-a-$((20+1))\n');
  await waitScreen(carol, /on-proxy-a-21/);

  // dave, on proxy B: the Sessions page lists it; Watch relays to A.
  await webLogin(dave, pB, 'dave', await c.freshCode('dave', daveSecret));
  await dave.locator('tr[data-node="web1"]').waitFor();
  await dave.getByRole('link', { name: 'Sessions' }).click();
  const row = dave.locator('tr[data-session]', { hasText: 'carol' }).first();
  await row.waitFor({ timeout: 30_000 });
  const sessionId = (await row.getAttribute('data-session'))!;
  await screenshot(dave, 'ha-01-sessions-on-proxy-b');
  await row.getByRole('button', { name: 'Watch' }).click();
  await dave.locator('[data-status="connected"]').waitFor();
  // The screen so far came with the join; then live output.
  await waitScreen(dave, /on-proxy-a-21/);
  await carol.locator('.people', { hasText: 'dave (observer)' }).waitFor();
  await carol.keyboard.type('echo watched-$((6*7))\n');
  await waitScreen(dave, /watched-42/);
  await dave.locator('[data-testid="terminal"]').click();
  await dave.keyboard.type('echo observer-typed\n');
  await carol.keyboard.type('echo after-$((1+1))\n');
  await waitScreen(carol, /after-2/);
  await waitScreen(dave, /after-2/);
  assert.equal((await screenText(carol)).includes('observer-typed'), false, 'an observer\'s keys reached the shell through the relay');
  await screenshot(dave, 'ha-02-observer-on-proxy-b');

  // Then as peer: dave's keys, typed on B, run in carol's shell on A.
  await dave.goto(`https://${pB.web}/web/join/${sessionId}?mode=peer`);
  await dave.locator('[data-status="connected"]').waitFor();
  await carol.locator('.people', { hasText: 'dave (peer)' }).waitFor();
  await dave.locator('[data-testid="terminal"]').click();
  await dave.keyboard.type('echo peer-from-b-$((7*6))\n');
  await waitScreen(carol, /peer-from-b-42/);
  await waitScreen(dave, /peer-from-b-42/);
  await screenshot(dave, 'ha-03-peer-on-proxy-b');
  await screenshot(carol, 'ha-04-owner-on-proxy-a');

  // carol's shell ends: dave's page on B says so.
  await carol.locator('[data-testid="terminal"]').click();
  await carol.keyboard.type('exit\n');
  await carol.locator('[data-status="ended"]').waitFor();
  await dave.locator('[data-status="ended"]').waitFor();
  await screenshot(dave, 'ha-05-ended-on-proxy-b');
});

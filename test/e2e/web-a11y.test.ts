/**
 * The web UI at a phone's width and for keyboard and screen-reader users, in
 * headless Chromium against a real `postern serve` and a real sshd node. Every page (sign
 * up, log in, nodes, terminal, a joined session, live sessions, recordings and the player,
 * audit, account) is checked at 1280 and at 375 px: axe-core finds no serious or critical
 * violation, the page never scrolls sideways at 375 px, the terminal fills the viewport
 * without scrolling the page, and a screenshot of each goes to test-output/screenshots/
 * (a11y-NAME-WIDTH.png) for a person to look at.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { TestCluster, TEST_PASSWORD } from '../helpers/cluster.ts';
import { LOCAL_USER, oathtoolCode } from '../helpers/openssh.ts';
import { axeViolations, launchBrowser, poll, screenshot, settle } from '../helpers/browser.ts';
import type { AxeViolation } from '../helpers/browser.ts';
import { ensureWebBuilt } from '../../scripts/build-web.ts';

const WIDE = { width: 1280, height: 800 };
const NARROW = { width: 375, height: 740 };

const c = new TestCluster();
let browser: Browser;
let origin: string;
let ctx: BrowserContext;
let page: Page;
let secret = '';

/** Every violation of moderate or minor impact seen, by rule, reported at the end (they do not fail the test). */
const lesser = new Map<string, Set<string>>();

/** Runs axe-core in the page (injected once per document) and returns its serious and critical violations. */
async function seriousViolations(p: Page, where = ''): Promise<AxeViolation[]> {
  const result = await axeViolations(p);
  for (const v of result.filter((x) => x.impact !== 'serious' && x.impact !== 'critical')) {
    const seen = lesser.get(`[${v.impact}] ${v.id}: ${v.help}`) ?? new Set<string>();
    seen.add(where || p.url());
    lesser.set(`[${v.impact}] ${v.id}: ${v.help}`, seen);
  }
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

function describe(violations: AxeViolation[]): string {
  return violations.map((v) => `  [${v.impact}] ${v.id}: ${v.help}\n${v.nodes.slice(0, 5).map((n) => `      at ${JSON.stringify(n.target)}${n.failureSummary ? ` — ${n.failureSummary.replace(/\s+/g, ' ')}` : ''}`).join('\n')}`).join('\n');
}

/** How the terminal sits in the viewport: whether the page scrolls, and the terminal's box and xterm's fitted screen. */
function terminalBox(p: Page, testid: string): Promise<{ scrollH: number; scrollW: number; innerH: number; innerW: number; top: number; bottom: number; left: number; right: number; screenH: number; screenW: number }> {
  return p.evaluate((id) => {
    const host = document.querySelector(`[data-testid="${id}"]`)!.getBoundingClientRect();
    const screen = document.querySelector(`[data-testid="${id}"] .xterm-screen`)?.getBoundingClientRect();
    const se = document.scrollingElement!;
    return { scrollH: se.scrollHeight, scrollW: se.scrollWidth, innerH: innerHeight, innerW: innerWidth, top: host.top, bottom: host.bottom, left: host.left, right: host.right, screenH: screen?.height ?? 0, screenW: screen?.width ?? 0 };
  }, testid);
}

/**
 * The checks every page gets, at 1280 and at 375 px: axe (no serious or critical violation),
 * no sideways scroll at 375, and for a terminal no page scroll and a terminal that fills the
 * viewport; a screenshot at each width. Fails once with every problem found.
 */
async function checkPage(p: Page, name: string, opts: { terminal?: string; ready?: (p: Page) => Promise<void> } = {}): Promise<void> {
  const problems: string[] = [];
  for (const size of [WIDE, NARROW]) {
    await p.setViewportSize(size);
    await settle(p);
    if (opts.ready) await opts.ready(p);
    const at = `${name} at ${size.width} px`;
    const title = await p.title();
    if (!/\S.* · Postern$/.test(title)) problems.push(`${at}: the page title "${title}" does not name the page`);
    const v = await seriousViolations(p, at);
    if (v.length) problems.push(`${at}: axe found ${v.length} serious or critical violation(s):\n${describe(v)}`);
    if (size.width === NARROW.width) {
      const wide = await poll(async () => {
        const { sw, iw } = await p.evaluate(() => ({ sw: document.scrollingElement!.scrollWidth, iw: innerWidth }));
        return sw <= iw ? '' : `the page scrolls sideways (scrollWidth ${sw} > innerWidth ${iw})`;
      }, 1000);
      if (wide) problems.push(`${at}: ${wide}`);
    }
    if (opts.terminal) {
      const id = opts.terminal;
      const fill = await poll(async () => {
        const b = await terminalBox(p, id);
        const out: string[] = [];
        if (b.scrollH > b.innerH) out.push(`the page scrolls (scrollHeight ${b.scrollH} > innerHeight ${b.innerH})`);
        if (b.bottom > b.innerH || b.innerH - b.bottom > 24) out.push(`the terminal ends at ${b.bottom}, not at the bottom of the viewport (${b.innerH})`);
        if (b.right - b.left < b.innerW - 48) out.push(`the terminal is ${b.right - b.left} px wide in a ${b.innerW} px viewport`);
        if (b.bottom - b.top < b.innerH / 2) out.push(`the terminal is only ${b.bottom - b.top} px high in a ${b.innerH} px viewport`);
        // xterm is fitted to its box: its screen is within the box and misses less than a row or column.
        if (b.screenW > b.right - b.left + 1 || b.screenH > b.bottom - b.top + 1) out.push(`xterm's screen (${b.screenW}x${b.screenH}) overflows its box (${b.right - b.left}x${b.bottom - b.top})`);
        if (b.screenH < b.bottom - b.top - 40 || b.screenW < b.right - b.left - 30) out.push(`xterm's screen (${b.screenW}x${b.screenH}) is not fitted to its box (${b.right - b.left}x${b.bottom - b.top})`);
        return out.join('; ');
      });
      if (fill) problems.push(`${at}: ${fill}`);
    }
    await screenshot(p, `a11y-${name}-${size.width}`);
  }
  await p.setViewportSize(WIDE);
  assert.equal(problems.length, 0, `\n${problems.join('\n')}`);
}

/** At 375 px every cell of a list table shows its column's label (the table becomes cards). */
async function assertCardsLabelled(p: Page): Promise<void> {
  await p.setViewportSize(NARROW);
  await settle(p);
  const cells = await p.evaluate(() => [...document.querySelectorAll('table.list tbody td')].map((td) => ({
    label: td.getAttribute('data-label') ?? '',
    shown: getComputedStyle(td, '::before').content,
    display: getComputedStyle(td).display,
    text: (td as HTMLElement).innerText.slice(0, 40),
  })));
  assert.ok(cells.length > 0, 'the table has rows');
  for (const cell of cells) {
    assert.notEqual(cell.display, 'table-cell', `at 375 px a cell is still a table cell: ${JSON.stringify(cell)}`);
    if (!cell.label) continue; // the actions cell: its buttons say what they do
    assert.ok(cell.shown.includes(cell.label), `the cell "${cell.text}" does not show its label "${cell.label}" (::before is ${cell.shown})`);
  }
  assert.ok(cells.some((cell) => cell.label), 'cells carry their column label');
  await p.setViewportSize(WIDE);
}

async function signIn(p: Page): Promise<void> {
  await p.goto(`${origin}/web/login`);
  await p.getByLabel('User').fill('ada');
  await p.getByLabel('Password').fill(TEST_PASSWORD);
  await p.getByLabel('Code from your authenticator app').fill(await c.freshCode('ada', secret));
  await p.getByRole('button', { name: 'Log in' }).click();
  await p.getByRole('heading', { name: 'Nodes' }).waitFor();
}

before(async () => {
  await ensureWebBuilt();
  await c.start();
  origin = `https://${c.serve.web}`;
  await c.node('web1', 'env=prod,team=web');
  await c.node('db1', 'env=dev', { start: false });
  browser = await launchBrowser();
  ctx = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true, viewport: WIDE });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: `https://${c.serve.web}` });
  page = await ctx.newPage();
});

after(async () => {
  console.log(`# axe, moderate and minor (not failing): ${lesser.size ? `\n${[...lesser].map(([rule, at]) => `#   ${rule} — ${[...at].join(', ')}`).join('\n')}` : 'none'}`);
  await browser?.close();
  await c.stop();
});

test('sign up: the invite page passes axe at both widths; the TOTP secret shows in unbroken groups of 4 with a copy button', async () => {
  const add = await c.admin(['users', 'add', 'ada', '--logins', LOCAL_USER, '--roles', 'admin', '--format', 'json']);
  assert.equal(add.code, 0, add.stderr);
  await page.goto((JSON.parse(add.stdout) as { inviteUrl: string }).inviteUrl.replace(/^https:\/\/[^/]+/, origin));
  secret = (await page.getByTestId('totp-secret').innerText()).trim();
  assert.match(secret, /^[A-Z2-7]{16,}$/);
  await checkPage(page, 'invite');

  await page.setViewportSize(NARROW);
  await settle(page);
  const groups = await page.evaluate(() => [...document.querySelectorAll('[data-testid="totp-secret"] > *')].map((g) => ({ text: (g as HTMLElement).innerText, lines: g.getClientRects().length, h: g.getBoundingClientRect().height })));
  assert.equal(groups.map((g) => g.text).join(''), secret, 'the groups spell the secret');
  assert.ok(groups.every((g, i) => g.text.length === 4 || i === groups.length - 1), `groups of 4: ${groups.map((g) => g.text).join(' ')}`);
  const lineH = Math.min(...groups.map((g) => g.h));
  assert.ok(groups.every((g) => g.lines === 1 && g.h <= lineH + 1), `no group breaks across lines at 375 px: ${JSON.stringify(groups)}`);
  await page.getByRole('button', { name: /Copy the secret/ }).click();
  await page.getByText('Secret copied').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, 'the copy button copies the secret without spaces');
  await page.setViewportSize(WIDE);

  await page.getByLabel('New password').fill(TEST_PASSWORD);
  await page.getByLabel('Repeat it').fill(TEST_PASSWORD);
  await page.getByLabel('Code the app shows').fill(oathtoolCode(secret, 0));
  await page.getByRole('button', { name: 'Create my account' }).click();
  await page.getByText('Your account is ready.').waitFor();
});

test('log in: the page and its refusal (an alert, styled as an error) pass axe at both widths', async () => {
  const other = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true, viewport: WIDE });
  try {
    const p = await other.newPage();
    await p.goto(`${origin}/web/login`);
    await p.getByRole('heading', { name: 'Log in to Postern' }).waitFor();
    await checkPage(p, 'login');
    // The check can fail: an input without a label, added for a moment, is a critical violation.
    await p.evaluate(() => { const i = document.createElement('input'); i.id = 'unlabelled'; document.querySelector('main')!.append(i); });
    assert.ok((await seriousViolations(p)).some((v) => v.id === 'label'), 'axe reports an input without a label');
    await p.evaluate(() => document.getElementById('unlabelled')!.remove());
    await p.getByLabel('User').fill('ada');
    await p.getByLabel('Password').fill('not the password');
    await p.getByLabel('Code from your authenticator app').fill('000000');
    await p.getByRole('button', { name: 'Log in' }).click();
    const alert = p.getByRole('alert');
    await alert.getByText(/invalid user name, password or second factor/).waitFor();
    assert.match(await alert.innerText(), /error/i, 'the refusal says it is an error in words, not by colour alone');
    assert.ok(await alert.evaluate((el) => el.classList.contains('error')), 'the refusal is styled as an error');
    await checkPage(p, 'login-refused');
  } finally {
    await other.close();
  }
});

test('nodes: landmarks, skip link, and a compact header whose menu button opens the navigation by keyboard', async () => {
  await signIn(page);
  await page.locator('tr[data-node="web1"]').waitFor();
  assert.equal(await page.locator('header').count(), 1);
  assert.equal(await page.locator('nav').count(), 1);
  assert.equal(await page.locator('main').count(), 1);
  assert.equal(await page.title(), 'Nodes · Postern');
  await checkPage(page, 'nodes');
  await assertCardsLabelled(page);

  // The first Tab reaches the skip link, which moves focus to the main content.
  await page.setViewportSize(NARROW);
  await settle(page);
  await page.reload();
  await page.locator('tr[data-node="web1"]').waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');

  // At 375 px the navigation hides behind a menu button.
  const menu = page.getByRole('button', { name: 'Menu' });
  assert.equal(await menu.getAttribute('aria-expanded'), 'false');
  assert.equal(await page.getByRole('link', { name: 'Sessions' }).isVisible(), false, 'the navigation is folded away at 375 px');
  await menu.focus();
  await page.keyboard.press('Enter');
  assert.equal(await menu.getAttribute('aria-expanded'), 'true');
  await page.getByRole('link', { name: 'Sessions' }).waitFor({ state: 'visible' });
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Nodes', 'Tab goes from the menu button into the menu');
  await screenshot(page, 'a11y-menu-open-375');
  assert.equal((await seriousViolations(page)).length, 0, 'the open menu passes axe');
  await page.keyboard.press('Escape');
  assert.equal(await menu.getAttribute('aria-expanded'), 'false');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? document.activeElement?.textContent), 'Menu', 'Escape gives focus back to the menu button');
  // A focused control shows a visible ring.
  await page.keyboard.press('Tab');
  assert.notEqual(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle), 'none', 'the focused control has an outline');
  await page.setViewportSize(WIDE);
  assert.equal(await menu.isVisible(), false, 'no menu button at 1280 px: the navigation is shown');
  await page.getByRole('link', { name: 'Sessions' }).waitFor({ state: 'visible' });
});

let terminal: Page;

test('terminal: fills the viewport without page scroll at both widths, xterm refits on resize', async () => {
  terminal = await ctx.newPage();
  await terminal.goto(`${origin}/web/terminal?node=web1&login=${encodeURIComponent(LOCAL_USER)}`);
  await terminal.locator('[data-status="connected"]').waitFor();
  await terminal.locator('[data-testid="terminal"] .xterm-rows').waitFor();
  await terminal.locator('[data-testid="terminal"]').click();
  await terminal.keyboard.type('echo a11y-$((40+2))\n');
  await terminal.getByText('a11y-42').first().waitFor();
  assert.equal(await terminal.getByRole('button', { name: 'Paste' }).count(), 1, 'the owner of a session may paste');
  await checkPage(terminal, 'terminal', { terminal: 'terminal' });
});

test('sessions and a joined session: cards at 375 px, and no Paste button for an observer', async () => {
  await page.goto(`${origin}/web/sessions`);
  const row = page.locator('tr[data-session]').first();
  await row.waitFor();
  await checkPage(page, 'sessions');
  await assertCardsLabelled(page);
  await row.getByRole('button', { name: 'Watch' }).click();
  await page.locator('[data-status="connected"]').waitFor();
  await page.getByText('as observer', { exact: true }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Paste' }).count(), 0, 'an observer cannot type, so it has no Paste button');
  assert.equal(await page.getByRole('button', { name: 'Copy' }).count(), 1, 'an observer may still copy');
  await checkPage(page, 'join-observer', { terminal: 'terminal' });
});

test('an ended session is styled as ended, not as success, at both widths', async () => {
  await terminal.locator('[data-testid="terminal"]').click();
  await terminal.keyboard.type('exit\n');
  await terminal.locator('[data-status="ended"]').waitFor();
  const msg = terminal.getByText(/The session ended with exit status 0/);
  await msg.waitFor();
  const look = await msg.evaluate((el) => ({ cls: el.className, color: getComputedStyle(el).color }));
  const success = await terminal.evaluate(() => { const p = document.createElement('p'); p.className = 'notice'; document.body.append(p); const col = getComputedStyle(p).color; p.remove(); return col; });
  assert.doesNotMatch(look.cls, /\bnotice\b/, 'an ended session is not a success notice');
  assert.notEqual(look.color, success, 'an ended session is not in the success colour');
  assert.match(await terminal.locator('[data-status="ended"]').innerText(), /ended/i);
  await checkPage(terminal, 'terminal-ended', { terminal: 'terminal' });
  await terminal.close();
});

test('recordings, the player, audit and account pass axe at both widths', async () => {
  await page.goto(`${origin}/web/recordings`);
  const row = page.locator('tr[data-recording]').first();
  await row.waitFor();
  await checkPage(page, 'recordings');
  await assertCardsLabelled(page);
  await row.getByRole('button', { name: 'Play' }).click();
  await page.getByLabel('Speed').selectOption('8');
  await page.locator('[data-testid="player"]').getByText('a11y-42').first().waitFor({ timeout: 30_000 });
  await checkPage(page, 'player');

  await page.goto(`${origin}/web/audit`);
  await page.locator('td', { hasText: 'user.login' }).first().waitFor();
  await checkPage(page, 'audit');
  await assertCardsLabelled(page);

  await page.goto(`${origin}/web/account`);
  await page.getByRole('heading', { name: /Account/ }).waitFor();
  await checkPage(page, 'account');

  // A new authenticator: the secret in groups and the QR code fit a phone's width too.
  await page.getByLabel('Current password').fill(TEST_PASSWORD);
  await page.getByLabel('Current code').fill(await c.freshCode('ada', secret));
  await page.getByRole('button', { name: 'Enrol a new authenticator' }).click();
  await page.getByRole('heading', { name: 'New authenticator' }).waitFor();
  await page.getByRole('button', { name: /Copy the secret/ }).waitFor();
  await checkPage(page, 'account-enrol');
});

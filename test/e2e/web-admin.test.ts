/**
 * The web UI's admin pages, in headless Chromium against a real `postern serve`.
 * An admin (ada) does every action through the pages (invite, reset and remove a user;
 * create, edit and remove a role; add a node, change its labels, remove it; change the
 * settings; make a join token) and the result is checked through the CLI (`users ls`,
 * `roles ls`, `nodes ls`, `settings show`, `audit`), which talks to auth directly. Every
 * admin page passes axe at 1280 and 375 px (no serious or critical violation), does not
 * scroll sideways at 375 px, its tables become labelled cards, and a screenshot of each
 * goes to test-output/screenshots/ (admin-NAME-WIDTH.png). A non-admin (bob) sees no admin
 * navigation and gets 403 from every admin route with a valid cookie and CSRF token:
 * auth refuses, the proxy and the page only forward.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { TestCluster, TEST_PASSWORD } from '../helpers/cluster.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { axeViolations, launchBrowser, poll, screenshot, settle } from '../helpers/browser.ts';
import type { AxeViolation } from '../helpers/browser.ts';
import { ensureWebBuilt } from '../../scripts/build-web.ts';
import { AuditType } from '../../src/api/audit.ts';
import type { AuditEvent } from '../../src/api/audit.ts';
import type { NodeInfo, UserInfo } from '../../src/api/types.ts';
import type { ClusterSettings, RoleSpec } from '../../src/api/auth-types.ts';

const WIDE = { width: 1280, height: 800 };
const NARROW = { width: 375, height: 740 };
const ADA_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const BOB_SECRET = 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ';

const c = new TestCluster();
let browser: Browser;
let origin: string;
let ctx: BrowserContext;
let page: Page;

/** axe-core's serious and critical violations in the page. */
async function seriousViolations(p: Page): Promise<AxeViolation[]> {
  const result = await axeViolations(p);
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** axe at both widths, no sideways scroll at 375, labelled cards at 375 when the page has a table; screenshots. */
async function checkPage(p: Page, name: string): Promise<void> {
  const problems: string[] = [];
  for (const size of [WIDE, NARROW]) {
    await p.setViewportSize(size);
    await settle(p);
    const at = `${name} at ${size.width} px`;
    const title = await p.title();
    if (!/\S.* · Postern$/.test(title)) problems.push(`${at}: the title "${title}" does not name the page`);
    const v = await seriousViolations(p);
    if (v.length) problems.push(`${at}: axe: ${v.map((x) => `[${x.impact}] ${x.id}: ${x.help} at ${JSON.stringify(x.nodes.slice(0, 3).map((n) => n.target))}`).join('; ')}`);
    if (size === NARROW) {
      const wide = await poll(async () => {
        const { sw, iw } = await p.evaluate(() => ({ sw: document.scrollingElement!.scrollWidth, iw: innerWidth }));
        return sw <= iw ? '' : `the page scrolls sideways (scrollWidth ${sw} > innerWidth ${iw})`;
      }, 1000);
      if (wide) problems.push(`${at}: ${wide}`);
      const cells = await p.evaluate(() => [...document.querySelectorAll('table.list tbody td')].map((td) => ({
        label: td.getAttribute('data-label') ?? '', shown: getComputedStyle(td, '::before').content, display: getComputedStyle(td).display,
      })));
      for (const cell of cells) {
        if (cell.display === 'table-cell') problems.push(`${at}: a cell is still a table cell`);
        if (cell.label && !cell.shown.includes(cell.label)) problems.push(`${at}: a cell does not show its label "${cell.label}"`);
      }
    }
    await screenshot(p, `admin-${name}-${size.width}`);
  }
  await p.setViewportSize(WIDE);
  assert.equal(problems.length, 0, `\n${problems.join('\n')}`);
}

/** Runs an admin command with --format json and parses its output. */
async function cli<T>(args: string[]): Promise<T> {
  const r = await c.admin([...args, '--format', 'json']);
  assert.equal(r.code, 0, `postern ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** The audit events of a type (as the CLI's `audit` shows them). */
function audit(type: string): Promise<AuditEvent[]> {
  return cli<AuditEvent[]>(['audit', '--type', type]);
}

/** Polls the CLI until `check` holds (the page's call may still be on its way). */
async function until<T>(args: string[], check: (v: T) => boolean, what: string): Promise<T> {
  let last: T | undefined;
  const problem = await poll(async () => {
    last = await cli<T>(args);
    return check(last) ? '' : what;
  }, 10_000);
  assert.equal(problem, '', `${what}: ${JSON.stringify(last)}`);
  return last!;
}

async function webLogin(p: Page, user: string, secret: string): Promise<void> {
  await p.goto(`${origin}/web/login`);
  await p.getByLabel('User').fill(user);
  await p.getByLabel('Password').fill(TEST_PASSWORD);
  await p.getByLabel('Code from your authenticator app').fill(await c.freshCode(user, secret));
  await p.getByRole('button', { name: 'Log in' }).click();
  await p.getByRole('heading', { name: 'Nodes' }).waitFor();
}

/** Goes to an admin page by the admin navigation. */
async function openAdmin(p: Page, link: string, heading: string): Promise<void> {
  await p.getByRole('navigation', { name: 'Admin' }).getByRole('link', { name: link }).click();
  await p.getByRole('heading', { name: heading, level: 1 }).waitFor();
}

before(async () => {
  await ensureWebBuilt();
  await c.start();
  origin = `https://${c.serve.web}`;
  await c.node('web1', 'env=prod', { start: false });
  await c.user('ada', LOCAL_USER, ADA_SECRET, 'admin');
  await c.user('bob', LOCAL_USER, BOB_SECRET, 'access');
  browser = await launchBrowser();
  ctx = await browser.newContext({ ignoreHTTPSErrors: true, bypassCSP: true, viewport: WIDE });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  page = await ctx.newPage();
  await webLogin(page, 'ada', ADA_SECRET);
});

after(async () => {
  await browser?.close();
  await c.stop();
});

test('users: an admin invites a user (a link that works, copied whole), resets and removes them; the CLI sees each change, audited as ada', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admin' }).click();
  await page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
  assert.equal(await page.title(), 'Users · Postern');
  await page.locator('tr[data-user="bob"]').waitFor();
  assert.equal(await page.locator('tr[data-user="ada"]').getByRole('button', { name: /Remove/ }).count(), 0, 'an admin cannot remove themself from the page');

  await page.getByLabel('User name').fill('carol');
  assert.equal(await page.getByRole('checkbox', { name: 'access' }).isChecked(), true, 'access is the default role');
  await page.getByLabel('Logins').fill('carol, deploy');
  await page.getByRole('button', { name: 'Invite' }).click();
  await page.getByText('User carol was invited.').waitFor();
  const link = (await page.getByTestId('invite-link').innerText()).trim();
  assert.match(link, /^https:\/\/[^/]+\/web\/invite\/[A-Za-z0-9_-]+$/);
  const users = await until<UserInfo[]>(['users', 'ls'], (u) => u.some((x) => x.name === 'carol'), 'users ls shows carol');
  const carol = users.find((u) => u.name === 'carol')!;
  assert.deepEqual({ roles: carol.roles, logins: carol.logins, status: carol.status }, { roles: ['access'], logins: ['carol', 'deploy'], status: 'invited' });

  await page.getByTestId('invite-result').getByRole('button', { name: /Copy/ }).click();
  await page.getByTestId('invite-result').getByText('Copied.').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), link, 'the copy button copies the whole link');
  const signup = await ctx.newPage();
  await signup.goto(link.replace(/^https:\/\/[^/]+/, origin));
  await signup.getByTestId('totp-secret').waitFor();
  assert.match(await signup.locator('main').innerText(), /carol/, 'the link is carol\'s sign-up page');
  await signup.close();

  await checkPage(page, 'users');

  const row = page.locator('tr[data-user="carol"]');
  await row.getByRole('button', { name: 'Reset carol' }).click();
  await row.getByRole('button', { name: 'Confirm: reset carol' }).click();
  await page.getByText('carol was reset').waitFor();
  const again = (await page.getByTestId('invite-link').innerText()).trim();
  assert.notEqual(again, link, 'a reset gives a new invite link');
  await until<AuditEvent[]>(['audit', '--type', AuditType.userReset], (e) => e.some((x) => x.target === 'carol' && x.user === 'ada'), 'the reset is audited as ada');

  await row.getByRole('button', { name: 'Remove carol' }).click();
  await row.getByRole('button', { name: 'Confirm: remove carol' }).click();
  await page.getByText('User carol was removed.').waitFor();
  await row.waitFor({ state: 'detached' });
  await until<UserInfo[]>(['users', 'ls'], (u) => !u.some((x) => x.name === 'carol') && u.some((x) => x.name === 'bob'), 'users ls no longer shows carol');
  const created = (await audit(AuditType.userCreated)).find((e) => e.target === 'carol');
  assert.equal(created?.user, 'ada', 'the invite is audited with the web user as the actor');
  assert.ok((await audit(AuditType.userDeleted)).some((e) => e.target === 'carol' && e.user === 'ada'), 'the removal is audited');

  // The form's own check, then a refusal from auth (bob exists), both shown as errors.
  await page.getByLabel('User name').fill('bob');
  await page.getByRole('button', { name: 'Invite' }).click();
  await page.getByRole('alert').getByText(/give at least one login/).waitFor();
  await page.getByLabel('Logins').fill('bob');
  await page.getByRole('button', { name: 'Invite' }).click();
  const alert = page.getByRole('alert').filter({ hasText: /bob/ });
  await alert.waitFor();
  assert.match(await alert.innerText(), /error/i);
  assert.ok(await alert.evaluate((el) => el.classList.contains('error')), 'styled as an error');
});

test('roles: built-in roles are read-only; an admin creates, edits and removes a role; bad input is refused by the form and by auth', async () => {
  await openAdmin(page, 'Roles', 'Roles');
  const adminRow = page.locator('tr[data-role="admin"]');
  await adminRow.waitFor();
  assert.match(await adminRow.innerText(), /built-in/);
  assert.match(await adminRow.innerText(), /Read-only/);
  assert.equal(await adminRow.getByRole('button').count(), 0, 'no Edit or Remove for a built-in role');

  // The form's own check.
  await page.getByLabel('Name', { exact: true }).fill('Bad Name');
  await page.getByLabel('Logins').fill('deploy');
  await page.getByLabel('Node labels').fill('env=dev');
  await page.getByRole('button', { name: 'Create role' }).click();
  await page.getByRole('alert').getByText(/the name must start with a lower-case letter/).waitFor();
  // Auth's check: a login that is no Unix name.
  await page.getByLabel('Name', { exact: true }).fill('dev-team');
  await page.getByLabel('Logins').fill('deploy, bad!login');
  await page.getByRole('button', { name: 'Create role' }).click();
  await page.getByRole('alert').getByText(/invalid login "bad!login"/).waitFor();
  assert.ok(!(await cli<RoleSpec[]>(['roles', 'ls'])).some((r) => r.name === 'dev-team'), 'a refused role is not created');

  await page.getByLabel('Logins').fill('deploy');
  await page.getByLabel('Node labels').fill('env=dev, staging\nteam=web');
  await page.getByLabel('Joining sessions').fill('access: observer');
  await page.getByRole('button', { name: 'Create role' }).click();
  await page.getByText('Role dev-team was created.').waitFor();
  let role = (await until<RoleSpec[]>(['roles', 'ls'], (r) => r.some((x) => x.name === 'dev-team'), 'roles ls shows dev-team')).find((r) => r.name === 'dev-team')!;
  assert.deepEqual(role.logins, ['deploy']);
  assert.deepEqual(role.node_labels, { env: ['dev', 'staging'], team: ['web'] });
  assert.deepEqual(role.join_sessions, [{ roles: ['access'], modes: ['observer'] }]);

  const row = page.locator('tr[data-role="dev-team"]');
  await row.getByRole('button', { name: 'Edit dev-team' }).click();
  await page.getByRole('heading', { name: 'Edit role dev-team' }).waitFor();
  assert.equal(await page.getByLabel('Node labels').inputValue(), 'env=dev, staging\nteam=web', 'the form holds the role');
  await page.getByLabel('Logins').fill('deploy, ubuntu');
  await page.getByRole('button', { name: 'Save role' }).click();
  await page.getByText('Role dev-team was saved.').waitFor();
  role = (await until<RoleSpec[]>(['roles', 'ls'], (r) => r.find((x) => x.name === 'dev-team')?.logins.length === 2, 'roles ls shows the new logins')).find((r) => r.name === 'dev-team')!;
  assert.deepEqual(role.logins, ['deploy', 'ubuntu']);
  assert.ok((await audit(AuditType.roleChanged)).some((e) => e.role === 'dev-team' && e.user === 'ada'), 'role changes are audited as ada');

  await checkPage(page, 'roles');

  await row.getByRole('button', { name: 'Remove dev-team' }).click();
  await row.getByRole('button', { name: 'Confirm: remove dev-team' }).click();
  await page.getByText('Role dev-team was removed.').waitFor();
  await until<RoleSpec[]>(['roles', 'ls'], (r) => !r.some((x) => x.name === 'dev-team'), 'roles ls no longer shows dev-team');
  assert.ok((await audit(AuditType.roleRemoved)).some((e) => e.role === 'dev-team' && e.user === 'ada'));
});

test('nodes: an admin adds a node (a real host certificate, the user CA and the sshd_config lines to copy), changes its labels and removes it', async () => {
  const key = join(c.work, 'db2_host_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  await openAdmin(page, 'Node registry', 'Node registry');
  await page.locator('tr[data-node="web1"]').waitFor();

  await page.getByLabel('Name', { exact: true }).fill('db2');
  await page.getByLabel('Address').fill('127.0.0.1:2222');
  await page.getByLabel('Labels').fill('env=dev=x');
  await page.getByLabel('Host public key').fill(readFileSync(`${key}.pub`, 'utf8'));
  await page.getByRole('button', { name: 'Add node' }).click();
  await page.getByRole('alert').getByText(/invalid labels "env=dev=x"/).waitFor();
  await page.getByLabel('Labels').fill('env=dev');
  await page.getByRole('button', { name: 'Add node' }).click();
  await page.getByText(/Node db2 was added/).waitFor();

  const sshd = await page.getByTestId('sshd-lines').innerText();
  assert.match(sshd, /^HostCertificate \/etc\/ssh\/db2-cert\.pub$/m);
  assert.match(sshd, /^TrustedUserCAKeys \/etc\/ssh\/postern_user_ca\.pub$/m);
  const cert = (await page.getByTestId('host-certificate').innerText()).trim();
  writeFileSync(`${key}-cert.pub`, `${cert}\n`);
  const shown = execFileSync('ssh-keygen', ['-L', '-f', `${key}-cert.pub`], { encoding: 'utf8' });
  assert.match(shown, /Type: ssh-ed25519-cert-v01@openssh.com host certificate/, shown);
  assert.match(shown, /^\s+db2$/m, 'the certificate names the node');
  assert.equal((await page.getByTestId('user-ca').innerText()).trim(), readFileSync(join(c.nodes.get('web1')!.dir, 'user_ca.pub'), 'utf8').trim(), 'the user CA is the cluster\'s');
  const nodes = await until<NodeInfo[]>(['nodes', 'ls'], (n) => n.some((x) => x.name === 'db2'), 'nodes ls shows db2');
  assert.deepEqual(nodes.find((n) => n.name === 'db2'), { name: 'db2', addr: '127.0.0.1:2222', labels: { env: 'dev' } });
  assert.ok((await audit(AuditType.nodeAdded)).some((e) => e.node === 'db2' && e.user === 'ada'), 'the node is audited as added by ada');

  await checkPage(page, 'nodes');

  const row = page.locator('tr[data-node="db2"]');
  await row.getByRole('button', { name: 'Edit labels of db2' }).click();
  await row.getByLabel('Labels of db2').fill('env=prod,team=db');
  await row.getByRole('button', { name: 'Save labels' }).click();
  await page.getByText('The labels of db2 were saved.').waitFor();
  await until<NodeInfo[]>(['nodes', 'ls'], (n) => n.find((x) => x.name === 'db2')?.labels.team === 'db', 'nodes ls shows the new labels');
  assert.ok((await audit(AuditType.nodeUpdated)).some((e) => e.node === 'db2' && e.user === 'ada'));

  await row.getByRole('button', { name: 'Remove db2' }).click();
  await row.getByRole('button', { name: 'Confirm: remove db2' }).click();
  await page.getByText('Node db2 was removed.').waitFor();
  await until<NodeInfo[]>(['nodes', 'ls'], (n) => !n.some((x) => x.name === 'db2') && n.some((x) => x.name === 'web1'), 'nodes ls no longer shows db2');
  assert.ok((await audit(AuditType.nodeRemoved)).some((e) => e.node === 'db2' && e.user === 'ada'));
});

test('settings: an admin turns on input recording, changes lockout and allows unregistered hosts; a bad CIDR is refused by auth', async () => {
  await openAdmin(page, 'Settings', 'Settings');
  await page.getByLabel('Session recording').waitFor();
  assert.equal(await page.getByLabel('Session recording').inputValue(), 'off');
  await page.getByLabel('Hosts the proxy may reach without a registered node').fill('10.0.0.0/99');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByRole('alert').getByText(/not a valid CIDR/).waitFor();
  assert.deepEqual((await cli<ClusterSettings>(['settings', 'show'])).allow_unregistered, [], 'nothing was saved');

  await page.getByLabel('Record what users type').check();
  await page.getByLabel('Failed logins before lockout').fill('7');
  await page.getByLabel('Locked for (minutes)').fill('45');
  await page.getByLabel('Longest certificate (hours)').fill('8');
  await page.getByLabel('Hosts the proxy may reach without a registered node').fill('*.internal.example\n10.0.0.0/8');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByText(/Saved: /).waitFor();
  const s = await until<ClusterSettings>(['settings', 'show'], (x) => x.record_input, 'settings show has record_input on');
  assert.deepEqual(
    { record_input: s.record_input, lockout_attempts: s.lockout_attempts, lockout_duration: s.lockout_duration, max_session_ttl: s.max_session_ttl, allow_unregistered: s.allow_unregistered, second_factor: s.second_factor, session_recording: s.session_recording },
    { record_input: true, lockout_attempts: 7, lockout_duration: 45 * 60_000, max_session_ttl: 8 * 3_600_000, allow_unregistered: ['*.internal.example', '10.0.0.0/8'], second_factor: 'otp', session_recording: 'off' },
  );
  const changed = (await audit(AuditType.settingsChanged)).find((e) => e.user === 'ada');
  assert.ok(changed, 'the change is audited as ada');
  assert.deepEqual([...(changed.changed as string[])].sort(), ['allow_unregistered', 'lockout_attempts', 'lockout_duration', 'max_session_ttl', 'record_input'], 'only what changed is sent');
  await checkPage(page, 'settings');
});

test('join tokens: an admin makes a proxy join token, shown once with the command to use it; audited', async () => {
  await openAdmin(page, 'Join tokens', 'Join tokens');
  await page.getByLabel('Valid for').selectOption({ label: '8 hours' });
  await page.getByRole('button', { name: 'Create token' }).click();
  const token = (await page.getByTestId('join-token').innerText()).trim();
  assert.match(token, /^\S{16,}$/);
  assert.match(await page.getByTestId('token-result').innerText(), new RegExp(`--join-token ${token}`));
  const ev = (await audit(AuditType.tokenCreated)).find((e) => e.user === 'ada');
  assert.ok(ev, 'the token is audited as made by ada');
  const hours = (Date.parse(String(ev.expiresAt)) - Date.parse(ev.time)) / 3_600_000;
  assert.ok(hours > 7.9 && hours < 8.1, `the token lives 8 hours (${hours})`);
  // Listed by id (never the token itself), as the CLI lists it.
  const listed = await until<Array<{ id: string }>>(['tokens', 'ls'], (l) => l.length === 1, 'one join token');
  const row = page.locator('tr', { hasText: listed[0].id });
  await row.waitFor();
  assert.ok(!(await page.locator('table.list').innerText()).includes(token), 'the table never shows the token');
  await checkPage(page, 'tokens');
  await row.getByRole('button', { name: `Remove token ${listed[0].id}` }).click();
  await page.getByRole('button', { name: `Confirm: remove token ${listed[0].id}` }).click();
  await page.getByText(`The join token ${listed[0].id} was removed`).waitFor();
  await page.getByText('No join tokens.').waitFor();
  await until<unknown[]>(['tokens', 'ls'], (l) => l.length === 0, 'no join token left');
  assert.ok((await audit(AuditType.tokenDeleted)).some((e) => e.user === 'ada' && e.tokenId === listed[0].id));
});

test('users: an admin edits a user\'s roles and logins in place (no new invite); a bad login is refused by auth; audited', async () => {
  await openAdmin(page, 'Users', 'Users');
  const row = page.locator('tr[data-user="bob"]');
  await row.getByRole('button', { name: 'Edit access of bob' }).click();
  const form = page.getByRole('form', { name: 'Roles and logins of bob' });
  await form.getByLabel('Logins of bob').fill(`${LOCAL_USER}, bad!login`);
  await form.getByRole('button', { name: 'Save' }).click();
  await form.getByText('invalid login "bad!login"').waitFor();
  await form.getByLabel('Logins of bob').fill(`${LOCAL_USER}, deploy`);
  await checkPage(page, 'users-edit');
  await form.getByRole('button', { name: 'Save' }).click();
  await page.getByText('The roles and logins of bob were saved.').waitFor();
  const bob = (await until<UserInfo[]>(['users', 'ls'], (l) => l.find((u) => u.name === 'bob')?.logins.includes('deploy') === true, 'bob has the login deploy')).find((u) => u.name === 'bob')!;
  assert.deepEqual([bob.roles, bob.logins], [['access'], [LOCAL_USER, 'deploy']]);
  assert.match(await row.innerText(), /deploy/);
  const ev = (await audit(AuditType.userUpdated)).find((e) => e.user === 'ada' && e.target === 'bob');
  assert.ok(ev, 'audited as ada');
});

test('locks: an admin locks a user with a reason and a node for an hour, sees them listed (and in the CLI), removes them; audited', async () => {
  await openAdmin(page, 'Locks', 'Locks');
  await page.getByText('No locks.').waitFor();
  await page.getByRole('button', { name: 'Lock', exact: true }).click();
  await page.getByText('enter the user to lock').waitFor();
  await page.getByLabel('User', { exact: true }).fill('mallory');
  await page.getByLabel('Reason').fill('laptop stolen');
  await page.getByRole('button', { name: 'Lock', exact: true }).click();
  await page.getByText('Locked user mallory until removed.').waitFor();
  await page.getByLabel('What to lock').selectOption({ label: 'a node' });
  await page.getByLabel('Node', { exact: true }).fill('web1');
  await page.getByLabel('Reason').fill('patching');
  await page.getByLabel('Lasts').selectOption({ label: '1 hour' });
  await page.getByRole('button', { name: 'Lock', exact: true }).click();
  await page.getByText(/Locked node web1 until /).waitFor();
  const listed = await until<Array<{ id: string; target: Record<string, string>; reason: string; createdBy: string; expiresAt?: string }>>(['lock', 'ls'], (l) => l.length === 2, 'two locks');
  assert.deepEqual(listed.map((l) => [l.target, l.reason, l.createdBy, Boolean(l.expiresAt)]), [[{ user: 'mallory' }, 'laptop stolen', 'ada', false], [{ node: 'web1' }, 'patching', 'ada', true]]);
  const row = page.locator('tr', { hasText: 'user mallory' });
  assert.match(await row.innerText(), /laptop stolen[\s\S]*ada[\s\S]*never/);
  await checkPage(page, 'locks');
  // A bad target is refused by auth, said as it is.
  await page.getByLabel('What to lock').selectOption({ label: 'a login' });
  await page.getByLabel('Login', { exact: true }).fill('not a login');
  await page.getByRole('button', { name: 'Lock', exact: true }).click();
  await page.getByText('invalid login "not a login" to lock').waitFor();
  await row.getByRole('button', { name: 'Remove the lock on user mallory' }).click();
  await page.getByRole('button', { name: 'Confirm: remove the lock on user mallory' }).click();
  await page.getByText('The lock on user mallory was removed.').waitFor();
  await until<unknown[]>(['lock', 'ls'], (l) => l.length === 1, 'one lock left');
  const events = await audit('lock');
  assert.ok(events.some((e) => e.type === AuditType.lockCreated && e.user === 'ada' && e.reason === 'laptop stolen'));
  assert.ok(events.some((e) => e.type === AuditType.lockDeleted && e.user === 'ada'));
  const left = await cli<Array<{ id: string }>>(['lock', 'ls']);
  assert.equal((await c.admin(['lock', 'rm', left[0].id])).code, 0);
});

test('a non-admin sees no admin navigation or page, and every admin route answers 403 to their cookie and CSRF token (from auth, audited)', async () => {
  const bobCtx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: WIDE });
  try {
    const p = await bobCtx.newPage();
    await webLogin(p, 'bob', BOB_SECRET);
    const main = p.getByRole('navigation', { name: 'Main' });
    assert.equal(await main.getByRole('link', { name: 'Admin' }).count(), 0, 'no Admin link for bob');
    assert.equal(await main.getByRole('link', { name: 'Audit' }).count(), 0);
    await p.goto(`${origin}/web/admin/users`);
    await p.getByText('No such page.').waitFor();
    assert.equal(await p.getByRole('navigation', { name: 'Admin' }).count(), 0, 'no admin navigation for bob');
    await p.setViewportSize(NARROW);
    await p.getByRole('button', { name: 'Menu' }).click();
    await p.getByRole('link', { name: 'Account' }).waitFor({ state: 'visible' });
    assert.equal(await p.getByRole('link', { name: 'Admin' }).count(), 0, 'nor in the menu at 375 px');
    await screenshot(p, 'admin-non-admin-375');
    await p.setViewportSize(WIDE);

    const routes: Array<[string, string, unknown?]> = [
      ['GET', '/webapi/admin/users'],
      ['POST', '/webapi/admin/users', { name: 'mallory', roles: ['admin'], logins: ['root'] }],
      ['POST', '/webapi/admin/users/ada/reset', {}],
      ['DELETE', '/webapi/admin/users/ada'],
      ['GET', '/webapi/admin/roles'],
      ['PUT', '/webapi/admin/roles/evil', { logins: ['root'], node_labels: { '*': ['*'] } }],
      ['DELETE', '/webapi/admin/roles/evil'],
      ['GET', '/webapi/admin/nodes'],
      ['POST', '/webapi/admin/nodes', { name: 'evil', addr: '127.0.0.1:22', labels: {}, hostPublicKey: readFileSync(join(c.nodes.get('web1')!.dir, 'ssh_host_ed25519_key.pub'), 'utf8') }],
      ['PUT', '/webapi/admin/nodes/web1', { labels: { env: 'evil' } }],
      ['DELETE', '/webapi/admin/nodes/web1'],
      ['GET', '/webapi/admin/settings'],
      ['PUT', '/webapi/admin/settings', { allow_unregistered: ['*'] }],
      ['POST', '/webapi/admin/tokens', { type: 'proxy', ttlMs: 3_600_000 }],
      ['GET', '/webapi/admin/tokens'],
      ['DELETE', '/webapi/admin/tokens/abcd1234'],
      ['PATCH', '/webapi/admin/users/bob', { setRoles: ['admin'] }],
      ['POST', '/webapi/admin/users/ada/unlock', {}],
      ['GET', '/webapi/admin/locks'],
      ['POST', '/webapi/admin/locks', { target: { user: 'ada' }, reason: 'mutiny' }],
      ['DELETE', '/webapi/admin/locks/abcd1234'],
    ];
    const answers = await p.evaluate(async (list) => {
      const me = await (await fetch('/webapi/sessions/web')).json() as { csrfToken: string };
      const out: Array<{ route: string; status: number; code?: string }> = [];
      for (const [method, path, body] of list) {
        const headers: Record<string, string> = { 'x-csrf-token': me.csrfToken };
        if (body !== undefined) headers['content-type'] = 'application/json';
        const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
        const json = await res.json().catch(() => ({})) as { error?: { code?: string } };
        out.push({ route: `${method} ${path}`, status: res.status, code: json.error?.code });
      }
      return out;
    }, routes);
    for (const a of answers) assert.deepEqual({ status: a.status, code: a.code }, { status: 403, code: 'ERR_POSTERN_ACCESS_DENIED' }, a.route);

    // Nothing changed, and auth recorded each refusal.
    assert.ok((await cli<UserInfo[]>(['users', 'ls'])).some((u) => u.name === 'ada'), 'ada is still there');
    assert.ok(!(await cli<UserInfo[]>(['users', 'ls'])).some((u) => u.name === 'mallory'));
    assert.deepEqual((await cli<NodeInfo[]>(['nodes', 'ls'])).find((n) => n.name === 'web1')?.labels, { env: 'prod' });
    assert.deepEqual((await cli<ClusterSettings>(['settings', 'show'])).allow_unregistered, ['*.internal.example', '10.0.0.0/8']);
    const denied = (await audit(AuditType.accessDenied)).filter((e) => e.user === 'bob');
    assert.equal(denied.length, routes.length, `each refusal is audited: ${JSON.stringify(denied)}`);

    // Without the CSRF token a change is refused before auth is asked; without a session, 401.
    const noCsrf = await p.evaluate(async () => (await fetch('/webapi/admin/tokens', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status);
    assert.equal(noCsrf, 403);
    const anon = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const res = await anon.request.get(`${origin}/webapi/admin/users`);
      assert.equal(res.status(), 401);
    } finally {
      await anon.close();
    }
  } finally {
    await bobCtx.close();
  }
});

/**
 * The session commands through `main` (runMain): `sessions ls`, `join`, `settings` and
 * `audit`. Argument errors are refused before anything is dialled; `join` and `sessions ls`
 * against a closed proxy exit 255 (join) and name the address; `settings` and `audit` run
 * against a real `postern serve` (its data dir's admin identity), so auth's own validation
 * and the JSON shapes are what a user gets.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMain } from '../helpers/cli.ts';
import { startServe } from '../helpers/serve.ts';
import type { ServeProcess } from '../helpers/serve.ts';
import { generateKeyPair, formatAuthorizedKey } from '../../src/ssh/keys.ts';
import { signCertificate, formatCertificate } from '../../src/ssh/certs.ts';
import { storeKeys } from '../../src/client/keystore.ts';
import { saveProfile } from '../../src/client/profile.ts';
import { profilePaths } from '../../src/client/paths.ts';
import { parseSince } from '../../src/cli/commands/audit.ts';
import { RECORDING_WARNING } from '../../src/cli/commands/settings.ts';

const userCa = generateKeyPair();

/** A valid login for alice in a fresh $TSH_HOME, pointing at the given proxy ports. */
function loginAt(sshPort: number, webPort: number): string {
  const home = mkdtempSync(join(tmpdir(), 'postern-tsh-'));
  const pair = generateKeyPair();
  const cert = signCertificate(userCa, { type: 'user', subjectPublicKey: pair.publicWire, keyId: 'alice', principals: ['ubuntu'], ttlMs: 3600_000, serial: 1n });
  const sshAddr = `127.0.0.1:${sshPort}`;
  storeKeys(profilePaths(home, '127.0.0.1', 'alice', 'test.example'), {
    keyPair: pair, comment: 'alice@test.example', certificate: formatCertificate(cert), hostCaKeys: [formatAuthorizedKey(generateKeyPair().publicWire)],
    cluster: 'test.example', proxySshAddr: sshAddr, proxySshHostKey: formatAuthorizedKey(generateKeyPair().publicWire),
  });
  saveProfile(home, { webProxyAddr: `127.0.0.1:${webPort}`, sshProxyAddr: sshAddr, proxyHost: '127.0.0.1', cluster: 'test.example', user: 'alice', logins: ['ubuntu'], insecure: true });
  return home;
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A listener that counts connections: proof that a refused command dialled nothing. */
async function counter(): Promise<{ port: number; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const s = createServer((c) => { n++; c.destroy(); });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as { port: number }).port, count: () => n, close: () => new Promise((r) => s.close(() => r())) };
}

test('join: a bad id or mode is a usage error (exit 2) and nothing is dialled', async () => {
  const c = await counter();
  try {
    const home = loginAt(c.port, c.port);
    const badId = await runMain(['join', 'x;rm', '--mode', 'observer'], { env: { TSH_HOME: home } });
    assert.equal(badId.code, 2, badId.stderr);
    assert.match(badId.stderr, /invalid session id "x;rm"/);
    assert.match(badId.stderr, /postern sessions ls/);
    const badMode = await runMain(['join', 'abcdefgh1234', '--mode', 'driver'], { env: { TSH_HOME: home } });
    assert.equal(badMode.code, 2, badMode.stderr);
    assert.match(badMode.stderr, /observer, peer/);
    const noId = await runMain(['join'], { env: { TSH_HOME: home } });
    assert.equal(noId.code, 2);
    assert.match(noId.stderr, /missing required argument 'id'/);
    assert.equal(c.count(), 0);
  } finally {
    await c.close();
  }
});

test('join and sessions ls without a login say how to log in; join exits 255 when the proxy is unreachable', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'postern-tsh-'));
  const notIn = await runMain(['join', 'abcdefgh1234'], { env: { TSH_HOME: empty } });
  assert.equal(notIn.code, 4, notIn.stderr);
  assert.match(notIn.stderr, /postern login/);
  const lsNotIn = await runMain(['sessions', 'ls'], { env: { TSH_HOME: empty } });
  assert.equal(lsNotIn.code, 4, lsNotIn.stderr);

  const port = await closedPort();
  const home = loginAt(port, port);
  const r = await runMain(['join', 'abcdefgh1234', '--mode', 'peer'], { env: { TSH_HOME: home } });
  assert.equal(r.code, 255, r.stderr);
  assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
  assert.equal(r.stdout, '');
  const ls = await runMain(['sessions', 'ls', '--format', 'json'], { env: { TSH_HOME: home } });
  assert.notEqual(ls.code, 0);
  assert.match(ls.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
  assert.equal(ls.stdout, '');
  const badFormat = await runMain(['sessions', 'ls', '--format', 'yaml'], { env: { TSH_HOME: home } });
  assert.equal(badFormat.code, 2);
});

test('audit --since: a duration back from now or a date and time; anything else is a usage error', () => {
  const now = new Date('2026-11-24T12:00:00Z');
  assert.equal(parseSince('1h', now).toISOString(), '2026-11-24T11:00:00.000Z');
  assert.equal(parseSince('90m', now).toISOString(), '2026-11-24T10:30:00.000Z');
  assert.equal(parseSince('7d', now).toISOString(), '2026-11-17T12:00:00.000Z');
  assert.equal(parseSince('2026-11-23T10:00Z', now).toISOString(), '2026-11-23T10:00:00.000Z');
  assert.equal(parseSince('2026-11-23T10:00:00+02:00', now).toISOString(), '2026-11-23T08:00:00.000Z');
  assert.throws(() => parseSince('yesterday', now), /invalid --since "yesterday"/);
  assert.throws(() => parseSince('1 fortnight', now), /--since/);
});

let serve: ServeProcess;

before(async () => {
  serve = await startServe();
});

after(async () => {
  await serve?.stop();
});

test('settings show --format json: every setting, with the defaults (recording off)', async () => {
  const r = await runMain(['settings', 'show', '--format', 'json', '--data-dir', serve.dataDir]);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(s.session_recording, 'off');
  assert.equal(s.record_input, false);
  for (const k of ['second_factor', 'max_session_ttl', 'lockout_attempts', 'lockout_window', 'lockout_duration', 'allow_unregistered']) assert.ok(k in s, k);
  const text = await runMain(['settings', 'show', '--data-dir', serve.dataDir]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /session_recording\s+off/);
  assert.match(text.stdout, /record_input\s+false/);
});

test('settings set: auth refuses a bad value with its reason; proxy mode prints the privilege warning; the change holds', async () => {
  const bad = await runMain(['settings', 'set', 'session_recording', 'always', '--data-dir', serve.dataDir]);
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(bad.stderr, /session_recording must be "off" or "proxy", not "always"/);
  assert.equal(bad.stdout, '');
  const unknown = await runMain(['settings', 'set', 'recording', 'proxy', '--data-dir', serve.dataDir]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown setting "recording"/);
  assert.match(unknown.stderr, /session_recording/);
  const badBool = await runMain(['settings', 'set', 'record_input', 'yes', '--data-dir', serve.dataDir]);
  assert.equal(badBool.code, 2);
  assert.match(badBool.stderr, /true \| false/);

  const on = await runMain(['settings', 'set', 'session_recording', 'proxy', '--data-dir', serve.dataDir]);
  assert.equal(on.code, 0, on.stderr);
  assert.ok(on.stderr.includes(RECORDING_WARNING), on.stderr);
  assert.match(on.stderr, /more privilege/);
  assert.match(on.stderr, /agent forwarding/);
  assert.match(on.stdout, /session_recording\s+proxy/);
  const input = await runMain(['settings', 'set', 'record_input', 'true', '--data-dir', serve.dataDir]);
  assert.equal(input.code, 0, input.stderr);
  assert.doesNotMatch(input.stderr, /privilege/);
  const s = JSON.parse((await runMain(['settings', 'show', '--format', 'json', '--data-dir', serve.dataDir])).stdout) as Record<string, unknown>;
  assert.equal(s.session_recording, 'proxy');
  assert.equal(s.record_input, true);

  const off = await runMain(['settings', 'set', 'session_recording', 'off', '--data-dir', serve.dataDir]);
  assert.equal(off.code, 0, off.stderr);
  assert.doesNotMatch(off.stderr, /privilege/);
});

test('audit --format json: events with time, type, user and outcome; --type, --user, --since filter', async () => {
  // Something to find: settings changes are audited as cluster.settings.
  const set = await runMain(['settings', 'set', 'lockout_attempts', '7', '--data-dir', serve.dataDir]);
  assert.equal(set.code, 0, set.stderr);
  const all = await runMain(['audit', '--format', 'json', '--data-dir', serve.dataDir]);
  assert.equal(all.code, 0, all.stderr);
  const events = JSON.parse(all.stdout) as Array<{ time: string; type: string; user?: string; success: boolean }>;
  assert.ok(events.length > 0);
  for (const e of events) {
    assert.equal(typeof e.type, 'string');
    assert.ok(!Number.isNaN(Date.parse(e.time)), e.time);
    assert.equal(typeof e.success, 'boolean');
  }
  const typed = JSON.parse((await runMain(['audit', '--type', 'cluster.settings', '--format', 'json', '--data-dir', serve.dataDir])).stdout) as typeof events;
  assert.ok(typed.length >= 1, JSON.stringify(events.map((e) => e.type)));
  assert.ok(typed.every((e) => e.type === 'cluster.settings'));
  const nobody = JSON.parse((await runMain(['audit', '--user', 'nobody-at-all', '--format', 'json', '--data-dir', serve.dataDir])).stdout) as typeof events;
  assert.deepEqual(nobody, []);
  const recent = JSON.parse((await runMain(['audit', '--since', '1h', '--type', 'cluster.settings', '--format', 'json', '--data-dir', serve.dataDir])).stdout) as typeof events;
  assert.equal(recent.length, typed.length);
  const future = JSON.parse((await runMain(['audit', '--since', new Date(Date.now() + 3600_000).toISOString(), '--format', 'json', '--data-dir', serve.dataDir])).stdout) as typeof events;
  assert.deepEqual(future, []);
  const text = await runMain(['audit', '--type', 'cluster.settings', '--data-dir', serve.dataDir]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /Time\s+Event\s+User\s+From\s+Outcome/);
  assert.match(text.stdout, /cluster\.settings/);
  const empty = await runMain(['audit', '--user', 'nobody-at-all', '--data-dir', serve.dataDir]);
  assert.match(empty.stderr, /No events match/);
  const badSince = await runMain(['audit', '--since', 'last tuesday', '--data-dir', serve.dataDir]);
  assert.equal(badSince.code, 2);
  assert.match(badSince.stderr, /invalid --since/);
});

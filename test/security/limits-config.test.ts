/**
 * The connection limits' arithmetic and configuration, without servers: MaxStartups'
 * random early drop as sshd_config(5) describes it, the per-source cap, the serve flags and
 * YAML keys with their defaults, and the errors for bad values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SSH_LIMITS, DEFAULT_WEB_LIMITS, StartupGate, parseMaxStartups, sourceKey } from '../../src/proxy/conn-limits.ts';
import { resolveServeConfig } from '../../src/cli/commands/serve-config.ts';
import { runMain } from '../helpers/cli.ts';

test('parseMaxStartups reads start:rate:full and one number, and refuses the rest with a hint', () => {
  assert.deepEqual(parseMaxStartups('10:30:100'), { start: 10, rate: 30, full: 100 });
  assert.deepEqual(parseMaxStartups('50'), { start: 50, rate: 100, full: 50 });
  for (const bad of ['', '10:30', '10:30:5', '0:30:100', '10:0:100', '10:101:100', 'a:b:c', '10:30:100:1', '-1']) {
    assert.throws(() => parseMaxStartups(bad), (err: Error & { code?: string; hint?: string }) => err.code === 'ERR_POSTERN_INVALID' && Boolean(err.hint), bad);
  }
});

test('MaxStartups: no drop below start, rate% at start, rising linearly, all at full', () => {
  const gate = new StartupGate({ maxStartups: { start: 10, rate: 30, full: 100 }, perSourceMaxStartups: 1000 });
  assert.equal(gate.dropProbability(9), 0);
  assert.equal(gate.dropProbability(10), 0.3);
  assert.equal(gate.dropProbability(55), 0.65);
  assert.ok(Math.abs(gate.dropProbability(99) - (30 + (70 * 89) / 90) / 100) < 1e-12);
  assert.equal(gate.dropProbability(100), 1);
});

test('StartupGate admits up to start, then drops by the dice, refuses at full, and counts releases once', () => {
  let dice = 0.99; // never below p < 1: admitted
  const gate = new StartupGate({ maxStartups: { start: 2, rate: 50, full: 4 }, perSourceMaxStartups: 100 }, () => dice);
  const admitted = [0, 1, 2, 3].map((i) => gate.admit(`10.0.0.${i}`));
  assert.ok(admitted.every((v) => v.ok));
  assert.equal(gate.unauthenticated(), 4);
  assert.deepEqual(gate.admit('10.0.0.9'), { ok: false, why: 'full' });
  const first = admitted[0];
  assert.ok(first.ok);
  first.release();
  first.release(); // once only
  assert.equal(gate.unauthenticated(), 3);
  dice = 0; // below any p > 0: dropped
  assert.deepEqual(gate.admit('10.0.0.9'), { ok: false, why: 'early-drop' });
});

test('the per-source cap counts one address (IPv4-mapped as IPv4) and frees on release', () => {
  const gate = new StartupGate({ maxStartups: { start: 100, rate: 30, full: 200 }, perSourceMaxStartups: 2 });
  const a = gate.admit('192.0.2.1');
  const b = gate.admit('::ffff:192.0.2.1');
  assert.ok(a.ok && b.ok);
  assert.deepEqual(gate.admit('192.0.2.1'), { ok: false, why: 'per-source' });
  assert.ok(gate.admit('192.0.2.2').ok, 'another address is not affected');
  a.release();
  assert.ok(gate.admit('192.0.2.1').ok);
  assert.equal(sourceKey('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(sourceKey('2001:db8::1'), '2001:db8::1');
});

test('serve: the limits default to sshd\'s, come from flags or the YAML file (flags win), and bad values stop start-up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-limits-'));
  const cfg = resolveServeConfig({}, dir);
  assert.deepEqual(cfg.sshLimits, { loginGraceMs: 60_000, maxStartups: { start: 10, rate: 30, full: 100 }, perSourceMaxStartups: 5, maxAuthTries: 6 });
  assert.deepEqual(cfg.sshLimits, { ...DEFAULT_SSH_LIMITS });
  assert.deepEqual(cfg.webLimits, { ...DEFAULT_WEB_LIMITS });
  const file = join(dir, 'postern.yaml');
  writeFileSync(file, [
    'login_grace_time: 2m', 'max_startups: 20:50:200', 'per_source_max_startups: 3', 'max_auth_tries: 4',
    'web_max_connections_per_source: 50', 'web_header_timeout: 30s', '',
  ].join('\n'));
  const fromFile = resolveServeConfig({ config: file }, dir);
  assert.deepEqual(fromFile.sshLimits, { loginGraceMs: 120_000, maxStartups: { start: 20, rate: 50, full: 200 }, perSourceMaxStartups: 3, maxAuthTries: 4 });
  assert.deepEqual(fromFile.webLimits, { maxConnectionsPerSource: 50, headerTimeoutMs: 30_000 });
  const flagsWin = resolveServeConfig({ config: file, maxAuthTries: '9', loginGraceTime: '5s' }, dir);
  assert.equal(flagsWin.sshLimits.maxAuthTries, 9);
  assert.equal(flagsWin.sshLimits.loginGraceMs, 5000);
  for (const [flags, re] of [
    [{ maxAuthTries: '0' }, /--max-auth-tries must be a whole number of at least 1/],
    [{ perSourceMaxStartups: 'many' }, /--per-source-max-startups must be a whole number/],
    [{ maxStartups: '10:30' }, /invalid --max-startups "10:30"/],
    [{ loginGraceTime: 'soon' }, /invalid --login-grace-time "soon"/],
    [{ webHeaderTimeout: '0s' }, /invalid --web-header-timeout/],
    [{ webMaxConnectionsPerSource: '-3' }, /--web-max-connections-per-source must be a whole number/],
  ] as const) {
    assert.throws(() => resolveServeConfig(flags, dir), (err: Error & { code?: string }) => err.code === 'ERR_POSTERN_CONFIG' && re.test(err.message), JSON.stringify(flags));
  }
});

test('serve --help shows every limit with its default', async () => {
  const r = await runMain(['serve', '--help']);
  const help = r.stdout.replace(/\s+/g, ' ');
  for (const [flag, dflt] of [
    ['--login-grace-time', '1m'], ['--max-startups', '10:30:100'], ['--per-source-max-startups', '5'], ['--max-auth-tries', '6'],
    ['--web-max-connections-per-source', '100'], ['--web-header-timeout', '20s'],
  ]) {
    assert.match(help, new RegExp(`${flag} <[^>]+> .*?\\(default ${dflt}\\)`), flag);
  }
});

/** Durations, addresses, escaping, errors and pins: the small pieces everything leans on. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseDuration, formatDuration } from '../../src/core/durations.ts';
import { parseHostPort, formatHostPort, escapeControl } from '../../src/core/text.ts';
import * as errors from '../../src/core/errors.ts';
import { errorToBody, errorFromBody } from '../../src/api/errors.ts';
import { isPin } from '../../src/core/tls-pin.ts';
import { VERSION } from '../../src/core/version.ts';

test('durations parse as users type them and refuse garbage', () => {
  assert.equal(parseDuration('12h'), 12 * 3600_000);
  assert.equal(parseDuration('1h30m'), 5400_000);
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('2d'), 2 * 86_400_000);
  for (const bad of ['', '12', 'h', '1x', '-1h', '0s', '1h junk']) assert.throws(() => parseDuration(bad), { code: 'ERR_POSTERN_INVALID' }, bad);
  assert.equal(formatDuration(12 * 3600_000 - 60_000), '11h59m');
  assert.equal(formatDuration(45_000), '45s');
  assert.equal(formatDuration(-5), '0s');
});

test('host:port parsing takes IPv6 in brackets and a default port', () => {
  assert.deepEqual(parseHostPort('proxy.example.com', 3080), { host: 'proxy.example.com', port: 3080 });
  assert.deepEqual(parseHostPort('127.0.0.1:0', 3080), { host: '127.0.0.1', port: 0 });
  assert.deepEqual(parseHostPort('[::1]:3023', 3023), { host: '::1', port: 3023 });
  assert.throws(() => parseHostPort('host:99999', 1), { code: 'ERR_POSTERN_INVALID' });
  assert.throws(() => parseHostPort('a:b:c', 1), { code: 'ERR_POSTERN_INVALID' });
  assert.equal(formatHostPort('::1', 22), '[::1]:22');
});

test('control characters from elsewhere are escaped before printing', () => {
  assert.equal(escapeControl('ok\u001b]0;pwned\u0007'), 'ok\\x1b]0;pwned\\x07');
  assert.equal(escapeControl('tab\tand\nnewline'), 'tab\tand\nnewline');
  assert.equal(escapeControl('c1\u009b'), 'c1\\x9b');
});

test('every error class has a stable code, a lower-case message, and the exit code STYLE.md names', () => {
  const cases: Array<[errors.PosternError, string, number]> = [
    [new errors.UsageError('bad flag'), 'ERR_POSTERN_USAGE', 2],
    [new errors.NotLoggedInError(), 'ERR_POSTERN_NOT_LOGGED_IN', 4],
    [new errors.CertificateExpiredError('certificate expired'), 'ERR_POSTERN_CERT_EXPIRED', 4],
    [new errors.CancelledError(), 'ERR_POSTERN_CANCELLED', 130],
    [new errors.ConnectionError('cannot reach x'), 'ERR_POSTERN_CONNECTION', 255],
    [new errors.TlsTrustError('untrusted'), 'ERR_POSTERN_TLS_UNTRUSTED', 255],
    [new errors.BadCredentialsError(), 'ERR_POSTERN_BAD_CREDENTIALS', 1],
    [new errors.OtpReplayError(), 'ERR_POSTERN_OTP_REUSED', 1],
    [new errors.UserLockedError(new Date(0)), 'ERR_POSTERN_USER_LOCKED', 1],
    [new errors.InviteInvalidError('the invite expired'), 'ERR_POSTERN_INVITE_INVALID', 1],
    [new errors.ConfigError('bad config'), 'ERR_POSTERN_CONFIG', 1],
  ];
  for (const [e, code, exit] of cases) {
    assert.equal(e.code, code);
    assert.equal(e.exitCode, exit, code);
    assert.ok(e instanceof errors.PosternError && e instanceof Error);
    assert.match(e.message, /^[^A-Z].*[^.]$/, `${code}: lower case, no trailing period`);
    assert.ok(e.name.endsWith('Error'));
  }
});

test('errors cross the wire with code, hint, exit code and lock time; internal details stay home', () => {
  const locked = new errors.UserLockedError(new Date('2030-01-01T00:00:00Z'));
  const { status, body } = errorToBody(locked);
  const back = errorFromBody(status, body, 'x');
  assert.ok(back instanceof errors.UserLockedError);
  assert.equal((back as errors.UserLockedError).lockedUntil.toISOString(), '2030-01-01T00:00:00.000Z');
  const internal = errorToBody(new Error('SQLITE_CORRUPT at /secret/path'));
  assert.equal(internal.status, 500);
  assert.doesNotMatch(JSON.stringify(internal.body), /secret/);
  const expired = errorFromBody(401, errorToBody(new errors.CertificateExpiredError('expired')).body, 'x');
  assert.equal(expired.exitCode, 4);
  const garbage = errorFromBody(502, '<html>', 'the proxy');
  assert.equal(garbage.code, 'ERR_POSTERN_BAD_RESPONSE');
  const hostile = errorFromBody(400, { error: { code: 'X', message: 'evil\u001b[2J' } }, 'x');
  assert.equal(hostile.message, 'evil\\x1b[2J');
});

test('pins have one shape', () => {
  assert.ok(isPin(`sha256:${'ab'.repeat(32)}`));
  assert.ok(!isPin('sha256:xyz'));
  assert.ok(!isPin(`sha1:${'ab'.repeat(20)}`));
});

test('the version in the code is the version in package.json', () => {
  assert.equal(VERSION, JSON.parse(readFileSync('package.json', 'utf8')).version);
});

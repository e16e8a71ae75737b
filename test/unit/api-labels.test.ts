/** The one label grammar (src/api/labels.ts): parse, format, match, and what each mistake says. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLabels, formatLabels, isSelector, parseLabels, parseSelector, selectorMatches } from '../../src/api/labels.ts';
import { loginNotAllowedError, LOGIN_NOT_ALLOWED } from '../../src/api/refusals.ts';
import { ExitCode, PosternError } from '../../src/core/errors.ts';

test('selectors that parse: pairs, whitespace around them, the same pair twice, the empty text', () => {
  const table: Array<[string, Record<string, string>]> = [
    ['env=prod', { env: 'prod' }],
    ['env=prod,team=db', { env: 'prod', team: 'db' }],
    [' env = prod ,  team=db ', { env: 'prod', team: 'db' }],
    ['env=prod,env=prod', { env: 'prod' }],
    ['k8s.io/zone=eu-1', { 'k8s.io/zone': 'eu-1' }],
    ['owner=pat@example.com', { owner: 'pat@example.com' }],
    ['port=tcp:22,v=1.2+build', { port: 'tcp:22', v: '1.2+build' }],
    ['', {}],
    ['   ', {}],
  ];
  for (const [text, labels] of table) assert.deepEqual(parseSelector(text), labels, text);
});

test('selectors that do not parse, each with a message that says what is wrong', () => {
  const table: Array<[string, RegExp]> = [
    ['env', /^invalid label selector "env": "env" is not NAME=VALUE$/],
    ['=prod', /^invalid label selector "=prod": "=prod" has no label name before "="$/],
    ['env=', /^invalid label selector "env=": invalid value "" of label "env" \(it is empty\)$/],
    ['zone=a=1', /^invalid label selector "zone=a=1": invalid value "a=1" of label "zone" \(a value may not contain "=" or ","\)$/],
    ['env=prod,', /^invalid label selector "env=prod,": an empty item between commas$/],
    ['env=prod,,team=db', /an empty item between commas/],
    ['env=a,env=b', /^invalid label selector "env=a,env=b": label "env" is given twice, with different values$/],
    ['env=prod,web', /"web" is not NAME=VALUE/],
    ['env=*', /invalid value "\*" of label "env"$/],
    ['env=a b', /invalid value "a b" of label "env"/],
    ['-env=prod', /invalid label name "-env"/],
    ['e nv=prod', /invalid label name "e nv"/],
    [`env=${'x'.repeat(64)}`, /invalid value "x{64}" of label "env"/],
    [`${'k'.repeat(64)}=v`, /invalid label name "k{64}"/],
    ['env=\u001b[31m', /invalid value "\\x1b\[31m" of label "env"|invalid value ".*" of label "env"/],
  ];
  for (const [text, re] of table) {
    assert.throws(() => parseSelector(text), (e: PosternError) => {
      assert.equal(e.code, 'ERR_POSTERN_INVALID', text);
      assert.equal(e.status, 400);
      assert.match(e.message, re, text);
      assert.ok(e.hint, `a hint for ${text}`);
      assert.doesNotMatch(e.message, /\u001b/, 'control characters are escaped');
      return true;
    });
  }
});

test('node labels: the same grammar, called labels in messages; objects are checked the same way', () => {
  assert.deepEqual(parseLabels('env=prod,team=web'), { env: 'prod', team: 'web' });
  assert.throws(() => parseLabels('zone=a=1'), /invalid labels "zone=a=1": invalid value "a=1" of label "zone"/);
  assert.deepEqual(checkLabels({ env: 'prod' }), { env: 'prod' });
  assert.throws(() => checkLabels({ env: 'a=1' }), /invalid value "a=1" of label "env" \(a value may not contain "=" or ","\)/);
  assert.throws(() => checkLabels({ 'bad key': 'x' }), /invalid label name "bad key"/);
  assert.throws(() => checkLabels({ env: 1 }), /invalid value "1" of label "env"|invalid value of label "env"/);
  assert.throws(() => checkLabels(['env=prod']), /labels must be an object/);
  assert.throws(() => checkLabels(null), /labels must be an object/);
});

test('format and parse are inverse; matching needs every label of the selector', () => {
  const labels = { zone: 'b', env: 'prod', app: 'x' };
  assert.equal(formatLabels(labels), 'app=x,env=prod,zone=b');
  assert.deepEqual(parseLabels(formatLabels(labels)), labels);
  assert.equal(formatLabels({}), '');
  assert.ok(isSelector('env=prod'));
  assert.ok(!isSelector('web1.example.com'));
  assert.ok(selectorMatches({ env: 'prod' }, labels));
  assert.ok(selectorMatches({}, labels), 'the empty selector matches every node');
  assert.ok(!selectorMatches({ env: 'prod', team: 'db' }, labels));
  assert.ok(!selectorMatches({ env: 'dev' }, labels));
  assert.ok(!selectorMatches({ toString: 'x' }, {}), 'only own labels count');
});

test('the one refusal of a login outside the certificate: one code, one message, exit 255, HTTP 403', () => {
  const e = loginNotAllowedError('root', ['ubuntu', 'deploy']);
  assert.ok(e instanceof PosternError);
  assert.equal(e.code, LOGIN_NOT_ALLOWED);
  assert.equal(e.code, 'ERR_POSTERN_LOGIN_NOT_ALLOWED');
  assert.equal(e.message, 'login "root" is not in your certificate (it allows: ubuntu, deploy)');
  assert.equal(e.exitCode, ExitCode.connection);
  assert.equal(e.status, 403);
  assert.match(e.hint ?? '', /postern login/);
  assert.equal(loginNotAllowedError('x', []).message, 'login "x" is not in your certificate (it allows: none)');
  assert.doesNotMatch(loginNotAllowedError('a\u001b]0;pwned\u0007', []).message, /[\u0000-\u001f]/, 'a login from the wire is escaped');
});

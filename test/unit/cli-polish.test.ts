/** The pure parts of the CLI polish: did-you-mean, play's id resolution, ls keywords, users update's list edits. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { didYouMean, editDistance } from '../../src/cli/suggest.ts';
import { resolveRecordingId } from '../../src/cli/commands/play.ts';
import { matchesKeywords, splitLsArgs } from '../../src/cli/commands/ls.ts';
import { editList } from '../../src/auth/calls/users.ts';
import { PosternError } from '../../src/core/errors.ts';

test('did-you-mean: the nearest known word, or nothing when none is near', () => {
  assert.equal(editDistance('sesion', 'session'), 1);
  assert.equal(editDistance('ab', 'ba'), 1, 'a swap is one edit');
  assert.equal(didYouMean('sesion_recording', ['session_recording', 'record_input']), 'Did you mean session_recording?');
  assert.equal(didYouMean('recording', ['session_recording', 'record_input']), 'Did you mean session_recording?', 'a word that contains it');
  assert.equal(didYouMean('zzz', ['session_recording']), undefined);
});

test('play: a whole id, a unique prefix, a live session id; an ambiguous prefix lists the matches', () => {
  const recs = [
    { id: '3f2a0000-0000-4000-8000-000000000001', user: 'alice', node: 'web1', startedAt: 't1', sessionId: 'sessAAAA1111' },
    { id: '3f2b0000-0000-4000-8000-000000000002', user: 'bob', node: 'db1', startedAt: 't2' },
  ];
  assert.equal(resolveRecordingId('3f2a', recs), recs[0].id);
  assert.equal(resolveRecordingId('sessAAAA1111', recs), recs[0].id);
  assert.equal(resolveRecordingId('liveBBBB', recs, [{ id: 'liveBBBB2222', recordingId: recs[1].id }]), recs[1].id);
  assert.throws(() => resolveRecordingId('3f2', recs), (err: PosternError) => {
    assert.equal(err.code, 'ERR_POSTERN_USAGE');
    assert.match(err.message, /"3f2" matches 2 recordings/);
    assert.match(err.hint ?? '', /3f2a0000.*alice@web1[\s\S]*3f2b0000.*bob@db1/);
    return true;
  });
  assert.throws(() => resolveRecordingId('ffff', recs), (err: PosternError) => err.code === 'ERR_POSTERN_NOT_FOUND');
});

test('ls: k=v are selectors, other words keywords that must all match a name, address or label', () => {
  assert.deepEqual(splitLsArgs(['web', 'env=prod', ' ', 'db']), { selectors: ['env=prod'], keywords: ['web', 'db'] });
  const n = { name: 'web1', addr: '10.0.0.5:22', labels: { env: 'prod', team: 'web' } };
  assert.ok(matchesKeywords(n, ['WEB', '10.0.0', 'env=pr']));
  assert.ok(!matchesKeywords(n, ['web', 'db']));
});

test('users update: set, then add, then remove, first order kept', () => {
  assert.deepEqual(editList(['a', 'b'], undefined, ['c', 'a'], ['b']), ['a', 'c']);
  assert.deepEqual(editList(['a', 'b'], ['x'], ['y'], undefined), ['x', 'y']);
});

/**
 * Playing recordings on the client: the text transcript (escape sequences interpreted away,
 * line editing followed, markers shown, nothing from the server printed raw), replay timing
 * with speed and idle limits on a fake sleep, reading .cast files, and the usage errors of
 * `postern play` and `postern recordings ls` before anything is fetched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { castTranscript, replayCast } from '../../src/client/cast-player.ts';
import { parseCast, castHeader, formatCastEvent } from '../../src/api/asciicast.ts';
import type { CastEvent } from '../../src/api/asciicast.ts';
import type { RecordingMeta } from '../../src/api/types.ts';
import { runMain } from '../helpers/cli.ts';

const o = (t: number, data: string): CastEvent => [t, 'o', data];

test('transcript: colours, titles and cursor sequences removed; CRLF, backspace and line editing followed', () => {
  const events: CastEvent[] = [
    o(0, '\x1b]0;alice@web1: ~\x07\x1b[01;32malice@web1\x1b[00m:\x1b[01;34m~\x1b[00m$ '),
    o(0.5, 'e'), o(0.6, 'c'), o(0.7, 'x'), o(0.8, '\b\x1b[K'), o(0.9, 'ho hi'),
    o(1, '\r\n'), o(1.1, 'hi\r\n'),
    // A split sequence: ESC in one event, the rest in the next.
    o(1.2, '\x1b'), o(1.3, '[31mred\x1b[0m\r\n'),
    // Progress bars overwrite the line with CR.
    o(2, '10%\r50%\r100%\r\n'),
    // Readline moving left and inserting.
    o(3, 'cat fle\x1b[2D\x1b[1@i\r\n'),
    [3.5, 'm', 'postern: 10 bytes missing'],
    o(4, '\x1b[?2004h\x1b(B\x1b=bye\x07\x1b[?2004l'),
  ];
  assert.equal(castTranscript(events), [
    'alice@web1:~$ echo hi',
    'hi',
    'red',
    '100%',
    'cat file',
    '[postern: 10 bytes missing]',
    'bye',
  ].join('\n') + '\n');
});

test('transcript: no control character from the recording reaches the terminal', () => {
  const text = castTranscript([o(0, 'a\x00b\x1b]52;c;ZXZpbA==\x1b\\c\x9b31md\x7fe\x1bPq#0\x1b\\f\r\n'), [1, 'm', 'evil\x1b[2J']]);
  assert.equal(text, 'abcdef\n[evil[2J]\n');
  assert.doesNotMatch(text, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  assert.equal(castTranscript([]), '');
  assert.equal(castTranscript([[0, 'r', '100x30'], [0, 'i', 'typed']]), '', 'only output and markers');
});

test('replay: original timing, scaled by speed, pauses capped by the idle limit, measured from the start', async () => {
  const events: CastEvent[] = [o(0.5, 'a'), o(0.5, 'b'), [1, 'r', '90x30'], o(3.5, 'c'), [4, 'm', 'note'], o(10, 'd')];
  const run = async (opts: { speed?: number; idleLimitSec?: number }) => {
    const log: string[] = [];
    let clock = 0;
    await replayCast(events, (d) => log.push(`${clock}:${d}`), {
      ...opts, sleep: async (ms) => { clock += ms; }, onMarker: (label, t) => log.push(`${clock}:[${label}@${t}]`),
    });
    return log;
  };
  assert.deepEqual(await run({}), ['500:a', '500:b', '3500:c', '4000:[note@4]', '10000:d']);
  assert.deepEqual(await run({ speed: 2 }), ['250:a', '250:b', '1750:c', '2000:[note@4]', '5000:d']);
  // --skip-idle: no pause over 1 s (the 2.5 s and 6 s pauses become 1 s each).
  assert.deepEqual(await run({ idleLimitSec: 1 }), ['500:a', '500:b', '2000:c', '2500:[note@4]', '3500:d']);
});

test('.cast files: the header from the meta, and every line checked when read', () => {
  const meta: RecordingMeta = {
    id: '0a1b2c3d-0000-4000-8000-000000000000', user: 'alice', node: 'web1', login: 'ubuntu', kind: 'exec', command: 'make test',
    startedAt: '2026-01-02T03:04:05.678Z', durationSec: 1.5, width: 100, height: 30, term: 'screen', bytes: 10, chunks: 1,
    status: 'incomplete', recordInput: false, updatedAt: '2026-01-02T03:04:07.000Z',
  };
  const header = castHeader(meta);
  assert.deepEqual({ ...header, postern: undefined }, {
    version: 2, width: 100, height: 30, timestamp: 1767323045, title: 'alice@web1', command: 'make test', env: { TERM: 'screen' }, postern: undefined,
  });
  assert.equal(header.duration, undefined, 'no duration while incomplete');
  assert.equal(castHeader({ ...meta, status: 'complete', durationSec: 1.5 }).duration, 1.5);
  const text = JSON.stringify(header) + '\n' + formatCastEvent([0.1234567, 'o', 'x']) + '\n';
  assert.deepEqual(parseCast(text).events, [[0.123457, 'o', 'x']]);
  assert.throws(() => parseCast('{"version":1,"width":1,"height":1}\n'), /not an asciicast v2 file/);
  assert.throws(() => parseCast('garbage'), /the first line is not JSON/);
  assert.throws(() => parseCast(JSON.stringify(header) + '\n[1,"o"]\n'), /line 2 must be \[time, code, data\]/);
});

test('play and recordings ls: usage errors before anything is fetched, and "not logged in"', async () => {
  const home = mkdtempSync(join(tmpdir(), 'postern-tsh-'));
  const badId = await runMain(['play', 'x/../../etc'], { env: { TSH_HOME: home } });
  assert.equal(badId.code, 2);
  assert.match(badId.stderr, /error: invalid recording id "x\/\.\.\/\.\.\/etc"\nhint: See the ids of the recordings you may play with:  postern recordings ls/);
  const badSpeed = await runMain(['play', '0a1b2c3d-0000-4000-8000-000000000000', '--speed', 'fast'], { env: { TSH_HOME: home } });
  assert.equal(badSpeed.code, 2);
  assert.match(badSpeed.stderr, /invalid --speed "fast": a number above 0, at most 1000/);
  const badFormat = await runMain(['play', '0a1b2c3d-0000-4000-8000-000000000000', '--format', 'gif'], { env: { TSH_HOME: home } });
  assert.equal(badFormat.code, 2);
  const notIn = await runMain(['recordings', 'ls'], { env: { TSH_HOME: home } });
  assert.equal(notIn.code, 4);
  assert.match(notIn.stderr, /error: not logged in/);
  const notInPlay = await runMain(['play', '0a1b2c3d-0000-4000-8000-000000000000'], { env: { TSH_HOME: home } });
  assert.equal(notInPlay.code, 4);
});

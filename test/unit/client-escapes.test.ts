/** The escapes of interactive sessions (src/client/escapes.ts), as OpenSSH's ssh reads them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EscapeFilter, escapeHelp, parseEscapeChar, showEscapeChar } from '../../src/client/escapes.ts';

function filter(escape: number | null = 0x7e): { f: EscapeFilter; counts: { disconnect: number; help: number } } {
  const counts = { disconnect: 0, help: 0 };
  return { f: new EscapeFilter(escape, { disconnect: () => counts.disconnect++, help: () => counts.help++ }), counts };
}

test('~. at a line start disconnects; the keys before it are still sent, the rest of the chunk is not', () => {
  const { f, counts } = filter();
  assert.equal(f.filter(Buffer.from('ls ~.x\r')).toString(), 'ls ~.x\r');
  assert.equal(counts.disconnect, 0);
  assert.equal(f.filter(Buffer.from('echo\r~.rm -rf /\r')).toString(), 'echo\r');
  assert.equal(counts.disconnect, 1);
  // At the very start, and after a line feed too.
  const first = filter();
  assert.equal(first.f.filter(Buffer.from('~.')).toString(), '');
  assert.equal(first.counts.disconnect, 1);
  const lf = filter();
  assert.equal(lf.f.filter(Buffer.from('a\n~.')).toString(), 'a\n');
  assert.equal(lf.counts.disconnect, 1);
});

test('~~ sends one ~ and the line is no longer at its start; ~ then another key sends both', () => {
  const { f, counts } = filter();
  assert.equal(f.filter(Buffer.from('~~.')).toString(), '~.');
  assert.equal(f.filter(Buffer.from('\r~x')).toString(), '\r~x');
  // Split over chunks, as keys arrive one by one on a terminal.
  assert.equal(f.filter(Buffer.from('\r')).toString(), '\r');
  assert.equal(f.filter(Buffer.from('~')).toString(), '');
  assert.equal(f.filter(Buffer.from('~')).toString(), '~');
  assert.equal(counts.disconnect + counts.help, 0);
});

test('~? lists the escapes and sends nothing; another escape may follow it', () => {
  const { f, counts } = filter();
  assert.equal(f.filter(Buffer.from('~?')).toString(), '');
  assert.equal(counts.help, 1);
  assert.equal(f.filter(Buffer.from('~.')).toString(), '');
  assert.equal(counts.disconnect, 1);
  const help = escapeHelp(0x7e, 'disconnect');
  for (const line of ['~.', '~?', '~~']) assert.ok(help.includes(` ${line}   - `), help);
  assert.match(help, /\r\n$/);
});

test('-e: another escape character, ^X for a control character, none for no escapes', () => {
  assert.equal(parseEscapeChar('~'), 0x7e);
  assert.equal(parseEscapeChar('%'), 0x25);
  assert.equal(parseEscapeChar('^]'), 0x1d);
  assert.equal(parseEscapeChar('^a'), 0x01);
  assert.equal(parseEscapeChar('none'), null);
  assert.throws(() => parseEscapeChar('ab'), (e: Error & { code?: string; hint?: string }) => e.code === 'ERR_POSTERN_USAGE' && /invalid escape character "ab"/.test(e.message) && /-e none/.test(e.hint ?? ''));
  assert.throws(() => parseEscapeChar(''), /invalid escape character/);
  assert.equal(showEscapeChar(0x1d), '^]');
  const pct = filter(0x25);
  assert.equal(pct.f.filter(Buffer.from('~.\r%%\r%.')).toString(), '~.\r%\r');
  assert.equal(pct.counts.disconnect, 1);
  const none = filter(null);
  assert.equal(none.f.filter(Buffer.from('~.~?\r~.')).toString(), '~.~?\r~.');
  assert.equal(none.counts.disconnect + none.counts.help, 0);
});

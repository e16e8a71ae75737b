import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SshFormatError, SshReader, SshWriter } from '../../src/ssh/wire.ts';

test('every field type round-trips through writer and reader', () => {
  const buf = new SshWriter()
    .byte(7)
    .boolean(true)
    .uint32(0xdeadbeef)
    .uint64(0xffff_ffff_ffff_fffen)
    .string('héllo')
    .bytes(Buffer.from([0, 1, 2]))
    .mpint(-1234n)
    .mpint(Buffer.from([0x80]))
    .toBuffer();
  const r = new SshReader(buf);
  assert.equal(r.byte(), 7);
  assert.equal(r.boolean(), true);
  assert.equal(r.uint32(), 0xdeadbeef);
  assert.equal(r.uint64(), 0xffff_ffff_ffff_fffen);
  assert.equal(r.string(), 'héllo');
  assert.deepEqual([...r.bytes()], [0, 1, 2]);
  assert.equal(r.mpint(), -1234n);
  assert.deepEqual([...r.mpintUnsigned()], [0x80]);
  assert.equal(r.remaining, 0);
  r.done();
});

test('mpints encode as the examples of RFC 4251 section 5', () => {
  const cases: [bigint, string][] = [
    [0n, '00000000'],
    [0x9a378f9b2e332a7n, '0000000809a378f9b2e332a7'],
    [0x80n, '000000020080'],
    [-0x1234n, '00000002edcc'],
    [-0xdeadbeefn, '00000005ff21524111'],
  ];
  for (const [value, hex] of cases) {
    assert.equal(new SshWriter().mpint(value).toBuffer().toString('hex'), hex, `encoding ${value}`);
    assert.equal(new SshReader(Buffer.from(hex, 'hex')).mpint(), value, `decoding ${hex}`);
  }
  // An unsigned magnitude drops leading zeros and adds one only for a set high bit.
  assert.equal(new SshWriter().mpint(Buffer.from([0, 0, 0x7f])).toBuffer().toString('hex'), '000000017f');
  assert.equal(new SshWriter().mpint(Buffer.from([0, 0xff])).toBuffer().toString('hex'), '0000000200ff');
});

test('a truncated string throws SshFormatError naming the data', () => {
  const buf = new SshWriter().uint32(10).raw(Buffer.from('abc')).toBuffer();
  assert.throws(() => new SshReader(buf, 'agent reply').string(), (err: unknown) => {
    assert.ok(err instanceof SshFormatError);
    assert.equal(err.code, 'ERR_POSTERN_SSH_FORMAT');
    assert.match(err.message, /^agent reply is truncated: needed 10 bytes/);
    return true;
  });
  assert.throws(() => new SshReader(Buffer.from([1, 2])).uint32(), SshFormatError);
  assert.throws(() => new SshReader(Buffer.alloc(7)).uint64(), SshFormatError);
});

test('done() rejects trailing bytes', () => {
  const r = new SshReader(Buffer.from([0, 0, 0, 1, 9, 9]), 'thing');
  r.uint32();
  assert.throws(() => r.done(), /thing has 2 unexpected trailing bytes/);
});

test('string() rejects bytes that are not utf-8', () => {
  const buf = new SshWriter().string(Buffer.from([0xff, 0xfe])).toBuffer();
  assert.throws(() => new SshReader(buf).string(), SshFormatError);
});

test('out-of-range integers are refused when writing', () => {
  assert.throws(() => new SshWriter().uint32(-1), RangeError);
  assert.throws(() => new SshWriter().uint32(2 ** 32), RangeError);
  assert.throws(() => new SshWriter().uint64(1n << 64n), RangeError);
  assert.throws(() => new SshWriter().byte(256), RangeError);
});

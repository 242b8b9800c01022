/**
 * The shared protobuf module: varints (64-bit and negative included), fixed-width numbers, nested and lazy
 * messages, writer → reader round trips, CRC32C against published check values, TFRecord framing and its checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c, maskedCrc32c } from '../src/protobuf/crc32c.js';
import { tfRecord, tfRecords } from '../src/protobuf/tfrecord.js';
import { messageBytes, ProtoMessage, ProtoReader, WIRE_BYTES, WIRE_FIXED32, WIRE_FIXED64, WIRE_VARINT } from '../src/protobuf/wire.js';
import { FormatError } from '../src/errors.js';

const fail = (what: string): never => {
  throw new Error(what);
};
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const reader = (b: Uint8Array) => new ProtoReader(b, fail);

test("varints: one byte below 128, seven bits a byte after, negative int64 as ten bytes of two's complement", () => {
  const encoded = (v: number | bigint) => hex(messageBytes(new ProtoMessage().int(1, v)).subarray(1));
  assert.equal(encoded(0), '00');
  assert.equal(encoded(127), '7f');
  assert.equal(encoded(128), '8001');
  assert.equal(encoded(300), 'ac02');
  assert.equal(encoded(2 ** 32), '8080808010');
  assert.equal(encoded(2 ** 53 - 1), 'ffffffffffffff0f');
  assert.equal(encoded(2n ** 53n + 1n), '8180808080808010');
  assert.equal(encoded(-1), 'ffffffffffffffffff01');
  assert.equal(encoded(-(2n ** 63n)), '80808080808080808001');
  // the tag: field 1 varint = 0x08, field 16 bytes = 0x82 0x01
  assert.equal(hex(messageBytes(new ProtoMessage().int(1, 5))), '0805');
  assert.equal(hex(messageBytes(new ProtoMessage().string(16, 'a'))), '82010161');
});

test('varints read back: numbers exact to 2^53, int64 exact over its whole range, negatives included', () => {
  const numbers = [0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 + 7, 2 ** 53 - 1];
  const int64s = [0n, 1n, -1n, -5n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), -(2n ** 53n) - 3n];
  const m = new ProtoMessage();
  for (const n of numbers) m.int(1, n);
  for (const n of int64s) m.int(2, n);
  const r = reader(messageBytes(m));
  for (const n of numbers) {
    assert.deepEqual(r.key(), { field: 1, wireType: WIRE_VARINT });
    assert.equal(r.varint(), n);
  }
  for (const n of int64s) {
    assert.deepEqual(r.key(), { field: 2, wireType: WIRE_VARINT });
    assert.equal(r.int64(), n);
  }
  assert.ok(r.done);
});

test('floats, doubles, strings, bytes and nested messages round trip', () => {
  const inner = new ProtoMessage().string(1, 'ünï 📈').float(2, 0.1);
  const m = new ProtoMessage().double(1, 1_700_000_000.123).message(3, inner).bytes(4, Uint8Array.of(0, 255)).float(5, -1e30);
  const bytes = messageBytes(m);
  assert.equal(bytes.byteLength, m.byteLength);
  // double: tag 0x09 then 8 bytes LE
  assert.equal(hex(bytes.subarray(0, 9)), '09' + hex(new Uint8Array(Float64Array.of(1_700_000_000.123).buffer)));

  const r = reader(bytes);
  assert.deepEqual(r.key(), { field: 1, wireType: WIRE_FIXED64 });
  assert.equal(r.double(), 1_700_000_000.123);
  assert.deepEqual(r.key(), { field: 3, wireType: WIRE_BYTES });
  const ir = r.message();
  ir.key();
  assert.equal(new TextDecoder().decode(ir.bytesField()), 'ünï 📈');
  assert.deepEqual(ir.key(), { field: 2, wireType: WIRE_FIXED32 });
  assert.equal(ir.float(), Math.fround(0.1));
  assert.ok(ir.done);
  r.key();
  assert.deepEqual([...r.bytesField()], [0, 255]);
  r.key();
  assert.equal(r.float(), Math.fround(-1e30));
  assert.ok(r.done);
});

test("skip passes over every wire type; malformed input reaches the caller's fail", () => {
  const m = new ProtoMessage().int(1, -1).double(2, 1).string(3, 'skip me').float(4, 2).int(5, 42);
  const r = reader(messageBytes(m));
  for (let i = 0; i < 4; i++) r.skip(r.key().wireType);
  r.key();
  assert.equal(r.varint(), 42);

  assert.throws(() => reader(Uint8Array.of(0x80)).varint(), /truncated varint/);
  assert.throws(() => reader(new Uint8Array(11).fill(0xff)).int64(), /varint too long/);
  assert.throws(() => reader(Uint8Array.of(0x0a, 0x05, 1, 2)).message(), /truncated field/);
  assert.throws(() => reader(Uint8Array.of(1, 2, 3)).double(), /truncated field/);
  assert.throws(() => reader(Uint8Array.of()).skip(3), /unsupported wire type 3/);
});

test('lazy chunks: produced only when the bytes are asked for, and held to their announced length', () => {
  let produced = 0;
  const lazy = { byteLength: 3, bytes: () => (produced++, Uint8Array.of(7, 8, 9)) };
  const outer = new ProtoMessage().message(1, new ProtoMessage().bytes(9, lazy));
  assert.equal(outer.byteLength, 2 + 2 + 3);
  assert.equal(produced, 0);
  assert.ok(outer.chunks.includes(lazy), 'the embedding message keeps the lazy chunk, uncopied');
  assert.equal(hex(messageBytes(outer)), '0a054a03070809');
  assert.equal(produced, 1);
  const liar = new ProtoMessage().bytes(1, { byteLength: 4, bytes: () => Uint8Array.of(1) });
  assert.throws(() => messageBytes(liar), /produced 1 bytes, announced 4/);
});

test('CRC32C matches the published check values', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // masked: ((crc >>> 15) | (crc << 17)) + 0xa282ead8
  assert.equal(maskedCrc32c(new TextEncoder().encode('123456789')), 0xc78ab0e5);
});

test('TFRecord frames read back, in order, with their offsets', () => {
  const a = new TextEncoder().encode('first');
  const b = new Uint8Array(0);
  const c = new Uint8Array(300).map((_, i) => i);
  const file = Buffer.concat([tfRecord(a), tfRecord(b), tfRecord(c)]);
  assert.equal(file.length, 16 * 3 + 5 + 300);
  assert.equal(file.readBigUInt64LE(0), 5n);
  assert.equal(file.readUInt32LE(8), maskedCrc32c(file.subarray(0, 8)));
  assert.equal(file.readUInt32LE(17), maskedCrc32c(a));
  const records = [...tfRecords(file, 'f')];
  assert.deepEqual(
    records.map((r) => [r.offset, r.end, hex(r.data)]),
    [
      [0, 21, hex(a)],
      [21, 37, ''],
      [37, file.length, hex(c)],
    ],
  );
});

test('a TFRecord file cut inside a record ends at its last whole record', () => {
  const file = Buffer.concat([tfRecord(Uint8Array.of(1, 2)), tfRecord(Uint8Array.of(3, 4, 5))]);
  for (const cut of [file.length - 1, 18 + 11, 18 + 3]) {
    const records = [...tfRecords(file.subarray(0, cut), 'f')];
    assert.equal(records.length, 1, `cut at ${cut}`);
    assert.equal(records[0]!.end, 18);
  }
});

test("a corrupted TFRecord frame is rejected, naming the file and the record's offset", () => {
  const good = tfRecord(Uint8Array.of(1, 2, 3));
  const dataFlipped = Buffer.concat([good, good]);
  dataFlipped[18 + 13] ^= 1; // the second record's data
  assert.throws(
    () => [...tfRecords(dataFlipped, 'run.tfevents')],
    (e: Error) => {
      assert.ok(e instanceof FormatError);
      assert.match(e.message, /^run\.tfevents: byte 19: the record's data checksum does not match/);
      return true;
    },
  );
  const lengthFlipped = Buffer.from(good);
  lengthFlipped[0] ^= 2;
  assert.throws(() => [...tfRecords(lengthFlipped, 'x')], /^FormatError: x: byte 0: the record length's checksum does not match/);
  const crcFlipped = Buffer.from(good);
  crcFlipped[good.length - 1] ^= 0x80;
  assert.throws(() => [...tfRecords(crcFlipped, 'x')], /byte 0: the record's data checksum/);
});

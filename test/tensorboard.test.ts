import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import protobuf from 'protobufjs';
import { SummaryWriter } from '../src/train/tensorboard.js';
import { readEventFile } from '../src/report/events.js';
import { crc32c } from '../src/protobuf/crc32c.js';

// Independent reader: the Event/Summary messages as declared in tensorflow/core/util/event.proto and
// tensorflow/core/framework/summary.proto (only the fields used here), decoded by protobufjs.
const PROTO = `
syntax = "proto3";
package tensorflow;
message Summary {
  message Value {
    string node_name = 7;
    string tag = 1;
    oneof value {
      float simple_value = 2;
      bytes obsolete_old_style_histogram = 3;
    }
  }
  repeated Value value = 1;
}
message SessionLog {
  enum SessionStatus { STATUS_UNSPECIFIED = 0; START = 1; STOP = 2; CHECKPOINT = 3; }
  SessionStatus status = 1;
  string checkpoint_path = 2;
  string msg = 3;
}
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    bytes graph_def = 4;
    Summary summary = 5;
    SessionLog session_log = 7;
  }
}
`;
const Event = protobuf.parse(PROTO).root.lookupType('tensorflow.Event');

interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  summary?: { value: { tag: string; simpleValue: number }[] };
  sessionLog?: { status: number };
}

// Bitwise CRC32C (reflected Castagnoli polynomial 0x82F63B78), deliberately not table-driven.
function crc32cBitwise(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function masked(data: Uint8Array): number {
  const crc = crc32cBitwise(data);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

function readRecords(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < bytes.length) {
    assert.ok(off + 12 <= bytes.length, `truncated header at ${off}`);
    const len = Number(view.getBigUint64(off, true));
    assert.equal(view.getUint32(off + 8, true), masked(bytes.subarray(off, off + 8)), `length CRC at ${off}`);
    const data = bytes.subarray(off + 12, off + 12 + len);
    assert.equal(data.length, len, `truncated data at ${off}`);
    assert.equal(view.getUint32(off + 12 + len, true), masked(data), `data CRC at ${off}`);
    out.push(data);
    off += 12 + len + 4;
  }
  return out;
}

function readEvents(file: string): DecodedEvent[] {
  return readRecords(fs.readFileSync(file)).map(
    (r) => Event.toObject(Event.decode(r), { longs: Number, defaults: true }) as DecodedEvent,
  );
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-tb-'));
}

test('the test CRC32C matches the published check values', () => {
  // "123456789" is the standard CRC catalogue check input; 32 zero / 32 0xFF bytes are RFC 3720 (iSCSI) B.4 vectors.
  assert.equal(crc32cBitwise(new TextEncoder().encode('123456789')), 0xe3069283);
  assert.equal(crc32cBitwise(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32cBitwise(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
});

test('the table-driven CRC32C the writer uses agrees with the bitwise one', () => {
  let seed = 12345;
  const data = new Uint8Array(4099).map(() => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24);
  for (const n of [0, 1, 7, 64, 4099]) assert.equal(crc32c(data.subarray(0, n)), crc32cBitwise(data.subarray(0, n)), `${n} bytes`);
});

test('bytes equal a reference event file written with TensorFlow protobufs', () => {
  // Expected bytes from the test_serialization case of the Python tensorboard_logger package (wall time 256.5,
  // 'v/1' = 1.5 at step 1, 'v/22' = 16.0 at step 2), which serializes with TensorFlow's generated protobuf code.
  const expected = Buffer.concat([
    Buffer.from('\x18\x00\x00\x00\x00\x00\x00\x00\xa3\x7fK"\t\x00\x00\x00\x00\x00\x08p@\x1a\rbrain.Event:2\xbc\x98!+', 'latin1'),
    Buffer.from(
      '\x19\x00\x00\x00\x00\x00\x00\x00\x8b\xf1\x08(\t\x00\x00\x00\x00\x00\x08p@\x10\x01*\x0c\n\n\n\x03v/1\x15\x00\x00\xc0?,\xec\xc0\x87',
      'latin1',
    ),
    Buffer.from(
      '\x1a\x00\x00\x00\x00\x00\x00\x00\x12\x9b\xd8-\t\x00\x00\x00\x00\x00\x08p@\x10\x02*\r\n\x0b\n\x04v/22\x15\x00\x00\x80A\x8f\xa3\xb6\x88',
      'latin1',
    ),
  ]);
  const dir = tmpDir();
  try {
    const w = new SummaryWriter(dir, { now: () => 256_500 });
    w.addScalar('v/1', 1.5, 1, 256.5);
    w.addScalar('v/22', 16.0, 2, 256.5);
    w.close();
    assert.deepEqual(fs.readdirSync(dir), [`events.out.tfevents.256.${os.hostname()}`]);
    assert.deepEqual(fs.readFileSync(w.file), expected);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('file name, version record and scalars decode with an independent reader', () => {
  const dir = path.join(tmpDir(), 'nested', 'run1');
  try {
    const start = 1_700_000_123_456;
    let clock = start;
    const w = new SummaryWriter(dir, { now: () => clock, filenameSuffix: '.v2' });
    assert.equal(path.basename(w.file), `events.out.tfevents.1700000123.${os.hostname()}.v2`);
    w.addScalar('train/loss', 0.1, 0, 1_700_000_200.25);
    clock = start + 5_000;
    w.addScalar('dev/accuracy', 2 / 3, 2 ** 40 + 3); // wall time from the clock
    w.addScalar('lr', 3e-4, -5, 1);
    w.addScalar('ünï/cødé 📈', -1e30, 7, 2);
    w.addScalar('nan', NaN, 8, 3);
    w.flush();
    w.close();
    w.close(); // second close is a no-op

    const events = readEvents(w.file);
    assert.equal(events.length, 6);
    assert.equal(events[0]!.fileVersion, 'brain.Event:2');
    assert.equal(events[0]!.wallTime, start / 1000);
    assert.equal(events[0]!.step, 0);
    assert.equal(events[0]!.summary, undefined);

    const scalars = events.slice(1).map((e) => ({
      wall: e.wallTime,
      step: e.step,
      tag: e.summary!.value[0]!.tag,
      value: e.summary!.value[0]!.simpleValue,
      count: e.summary!.value.length,
    }));
    // simple_value is float32: 0.1 is stored as 0.100000001490116..., 2/3 as 0.666666686534881...
    assert.deepEqual(scalars.slice(0, 4), [
      { wall: 1_700_000_200.25, step: 0, tag: 'train/loss', value: 0.10000000149011612, count: 1 },
      { wall: 1_700_000_128.456, step: 1_099_511_627_779, tag: 'dev/accuracy', value: 0.6666666865348816, count: 1 },
      { wall: 1, step: -5, tag: 'lr', value: 0.0003000000142492354, count: 1 },
      { wall: 2, step: 7, tag: 'ünï/cødé 📈', value: -1.0000000150474662e30, count: 1 },
    ]);
    assert.equal(scalars[4]!.tag, 'nan');
    assert.ok(Number.isNaN(scalars[4]!.value));
  } finally {
    fs.rmSync(path.dirname(path.dirname(dir)), { recursive: true, force: true });
  }
});

test('records are on disk before close, and a reopened file is appended to', () => {
  const dir = tmpDir();
  try {
    const w = new SummaryWriter(dir, { now: () => 1_000_000 });
    w.addScalar('a', 1, 1, 10);
    // No flush/close: a crash here must leave a readable file.
    assert.deepEqual(
      readEvents(w.file).map((e) => e.fileVersion ?? e.summary!.value[0]!.tag),
      ['brain.Event:2', 'a'],
    );
    w.close();
    assert.throws(() => w.addScalar('b', 2, 2), /closed/);

    // Same second, same host: the second writer appends to the same file instead of truncating it.
    const w2 = new SummaryWriter(dir, { now: () => 1_000_500 });
    assert.equal(w2.file, w.file);
    w2.addScalar('c', 3, 3, 11);
    w2.close();
    assert.deepEqual(
      readEvents(w.file).map((e) => e.fileVersion ?? e.summary!.value[0]!.tag),
      ['brain.Event:2', 'a', 'brain.Event:2', 'c'],
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('rejects bad arguments', () => {
  const dir = tmpDir();
  try {
    const w = new SummaryWriter(dir);
    assert.throws(() => w.addScalar('', 1, 1), TypeError);
    assert.throws(() => w.addScalar('x', 1, 1.5), RangeError);
    assert.throws(() => w.addScalar('x', 1, 2 ** 60), RangeError);
    assert.throws(() => w.addScalar('x', '1' as unknown as number, 1), TypeError);
    w.close();
    assert.equal(readEvents(w.file).length, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a resumed writer (purgeStep) starts with a SessionLog START at that step, as torch writes it', () => {
  const dir = tmpDir();
  try {
    const w = new SummaryWriter(dir, { now: () => 1_700_000_000_000, purgeStep: 301 });
    w.addScalar('train/loss_step', 0.5, 301, 5);
    w.close();
    const events = readEvents(w.file);
    assert.equal(events.length, 3);
    assert.equal(events[0]!.fileVersion, 'brain.Event:2');
    assert.equal(events[1]!.step, 301);
    assert.equal(events[1]!.sessionLog?.status, 1);
    assert.equal(events[1]!.summary, undefined);
    assert.equal(events[2]!.summary!.value[0]!.tag, 'train/loss_step');
    // Our own reader sees the restart before the file's first scalar.
    const contents = readEventFile(w.file);
    assert.deepEqual(contents.restarts, [{ step: 301, at: 0 }]);
    assert.equal(contents.scalars.length, 1);
    assert.throws(() => new SummaryWriter(dir, { purgeStep: 1.5 }), /purgeStep must be an integer/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf } from '../src/tf.js';
import { encodeSafetensors, loadSafetensors, openSafetensorsFile, readSafetensorsBytes, readSafetensorsFile, saveSafetensors } from '../src/safetensors.js';
import { FormatError } from '../src/errors.js';
import { fixtureDir } from './helpers/fixtures.js';

/** Builds a safetensors file by hand: header JSON + raw bytes, independent of the writer under test. */
function build(header: Record<string, unknown>, data: Uint8Array, headerLenOverride?: bigint): Uint8Array {
  const json = Buffer.from(JSON.stringify(header), 'utf-8');
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLenOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);

test('reads F32, F16 and BF16 as float32', () => {
  // 1.5 in half = 0x3E00, -2 = 0xC000; in bfloat16 1.5 = 0x3FC0, -2 = 0xC000 (little-endian bytes below).
  const half = new Uint8Array([0x00, 0x3e, 0x00, 0xc0, 0x00, 0x7c]);
  const bf16 = new Uint8Array([0xc0, 0x3f, 0x00, 0xc0]);
  const data = new Uint8Array([...f32([0.25, -3]), ...half, ...bf16]);
  const bytes = build(
    {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      h: { dtype: 'F16', shape: [3], data_offsets: [8, 14] },
      b: { dtype: 'BF16', shape: [2, 1], data_offsets: [14, 18] },
      __metadata__: { format: 'pt' },
    },
    data,
  );
  const { tensors, metadata } = readSafetensorsBytes(bytes);
  assert.deepEqual(metadata, { format: 'pt' });
  assert.deepEqual([...tensors.get('a')!.data], [0.25, -3]);
  assert.deepEqual([...tensors.get('h')!.data], [1.5, -2, Infinity]);
  assert.deepEqual([...tensors.get('b')!.data], [1.5, -2]);
  assert.deepEqual(tensors.get('b')!.shape, [2, 1]);
});

test('writes what the reference layout expects and reads it back', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-st-'));
  try {
    const file = path.join(dir, 'x.safetensors');
    saveSafetensors(file, { 'b.weight': tf.tensor2d([[1, 2], [3, 4]]), 'a.bias': tf.tensor1d([5]) });
    const raw = fs.readFileSync(file);
    const headerLen = Number(raw.readBigUInt64LE(0));
    assert.equal((8 + headerLen) % 8, 0, 'data is 8-byte aligned');
    const header = JSON.parse(raw.subarray(8, 8 + headerLen).toString('utf-8'));
    assert.deepEqual(header.__metadata__, { format: 'pt' });
    assert.deepEqual(header['a.bias'], { dtype: 'F32', shape: [1], data_offsets: [0, 4] });
    assert.deepEqual(header['b.weight'], { dtype: 'F32', shape: [2, 2], data_offsets: [4, 20] });
    const loaded = loadSafetensors(file);
    assert.deepEqual(loaded['b.weight'].arraySync(), [[1, 2], [3, 4]]);
    assert.equal(fs.readdirSync(dir).length, 1, 'no temp files left');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a file written tensor by tensor is byte for byte the encoded file, ints included', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-st-'));
  try {
    const file = path.join(dir, 'x.safetensors');
    const tensors = {
      'z.weight': tf.tensor2d([[1.5, -2], [3, 4e-9]]),
      ids: tf.tensor1d([7, -1, 3], 'int32'),
      'a.raw': { shape: [3], data: new Float32Array([0.5, 0.25, -8]) },
    };
    saveSafetensors(file, tensors, { format: 'pt', note: 'x' });
    assert.deepEqual(new Uint8Array(fs.readFileSync(file)), encodeSafetensors(tensors, { format: 'pt', note: 'x' }));
    const back = readSafetensorsFile(file).tensors;
    assert.equal(back.get('ids')!.dtype, 'I32');
    assert.deepEqual([...back.get('ids')!.data], [7, -1, 3]);
    assert.deepEqual([...back.get('a.raw')!.data], [0.5, 0.25, -8]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('opening a file reads the header now and each tensor only when asked, as readSafetensorsFile reads it', () => {
  const file = path.join(fixtureDir('t5-tiny'), 'state_dict_all_keys.safetensors');
  const eager = readSafetensorsFile(file);
  const lazy = openSafetensorsFile(file);
  assert.deepEqual(lazy.metadata, eager.metadata);
  assert.deepEqual([...lazy.tensors.keys()].sort(), [...eager.tensors.keys()].sort());
  for (const [name, t] of eager.tensors) {
    const l = lazy.tensors.get(name)!;
    assert.deepEqual([l.dtype, l.shape], [t.dtype, t.shape], name);
    assert.deepEqual(l.read(), t.data, name);
  }
  // A header is checked on opening; the data of a file cut short only when its tensor is read.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-st-'));
  try {
    const cut = path.join(dir, 'cut.safetensors');
    fs.writeFileSync(cut, fs.readFileSync(file).subarray(0, 100));
    assert.throws(() => openSafetensorsFile(cut), /cut\.safetensors: not a valid safetensors file/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the fixtures load as they are', () => {
  const { tensors, metadata } = readSafetensorsFile(path.join(fixtureDir('t5-tiny'), 'model.safetensors'));
  assert.equal(metadata.format, 'pt');
  assert.deepEqual(tensors.get('shared.weight')!.shape, [128, 32]);
});

test('damaged and hostile files give one clear error each', () => {
  const good = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const cases: [string, Uint8Array, RegExp][] = [
    ['shorter than 8 bytes', new Uint8Array(5), /shorter than the 8-byte header length/],
    ['header length beyond the file', build(good, f32([1, 2]), 10n ** 9n), /header length 1000000000 is larger than the rest of the file/],
    ['header not JSON', (() => { const b = build(good, f32([1, 2])); b[9] = 0x7b; b[10] = 0x7b; return b; })(), /header is not valid JSON/],
    ['header not an object', build([1, 2] as unknown as Record<string, unknown>, new Uint8Array()), /not a JSON object/],
    ['unknown dtype', build({ a: { dtype: 'F8', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2)), /unknown dtype "F8"/],
    ['offsets outside the data', build({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32([1, 2])), /outside the data section of 8 bytes/],
    ['overlapping tensors', build({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32([1, 2])), /"a" and "b" overlap/],
    ['shape does not match bytes', build({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32([1, 2])), /shape \[3\] \(12 bytes of F32\) but its byte range holds 8 bytes/],
    ['10^12 elements', build({ a: { dtype: 'F32', shape: [1000000, 1000000], data_offsets: [0, 8] } }, f32([1, 2])), /4000000000000 bytes of F32/],
    ['negative shape', build({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, f32([1, 2])), /invalid shape/],
    ['bad offsets', build({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, f32([1, 2])), /outside the data section/],
  ];
  for (const [what, bytes, pattern] of cases) {
    assert.throws(() => readSafetensorsBytes(bytes, 'x.safetensors'), (e: Error) => {
      assert.ok(e instanceof FormatError, `${what}: ${e}`);
      assert.match(e.message, /^x\.safetensors: not a valid safetensors file: /, what);
      assert.match(e.message, pattern, what);
      assert.ok(!e.message.includes('\n'), `${what}: one line`);
      return true;
    });
  }
});

test('a truncated file is reported, not half-read', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-st-'));
  try {
    const full = encodeSafetensors({ w: { shape: [4, 4], data: new Float32Array(16).fill(1) } });
    const file = path.join(dir, 'cut.safetensors');
    fs.writeFileSync(file, full.subarray(0, full.length - 10));
    assert.throws(() => readSafetensorsFile(file), /outside the data section .* the file may be truncated/);
    assert.throws(() => readSafetensorsFile(path.join(dir, 'missing.safetensors')), /cannot open \(ENOENT\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

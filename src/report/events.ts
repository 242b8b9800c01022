/**
 * Reads TensorBoard event files: TFRecord framing (uint64 LE length, masked CRC32C of the length, data, masked
 * CRC32C of the data) around `Event` protos (tensorflow/core/util/event.proto). Only what a report needs is decoded:
 * wall time, step and scalar summaries (`simple_value`, or a scalar float/double `tensor` as TF2 writers store them).
 */
import * as fs from 'node:fs';
import { FormatError } from '../errors.js';
import { maskedCrc32c } from '../train/tensorboard.js';

export interface ScalarEvent {
  tag: string;
  step: number;
  value: number;
  /** Seconds since the epoch. */
  wallTime: number;
}

export interface EventFileContents {
  /** The file_version record's text (`brain.Event:2`), when present. */
  fileVersion?: string;
  scalars: ScalarEvent[];
  /**
   * SessionLog START records (a resumed run's writer): everything logged before one, in this file or earlier ones,
   * at its step or later is superseded. `at` is the number of this file's scalars that precede it.
   */
  restarts: { step: number; at: number }[];
  /**
   * True when the file ends inside a record: a writer that was killed mid-write leaves that; every complete record
   * before it has been read.
   */
  truncated: boolean;
}

/** Reads one event file. A record whose checksum is wrong is a FormatError naming the file and byte offset. */
export function readEventFile(file: string): EventFileContents {
  return parseEventFile(fs.readFileSync(file), file);
}

export function parseEventFile(bytes: Uint8Array, source = 'event file'): EventFileContents {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: EventFileContents = { scalars: [], restarts: [], truncated: false };
  let off = 0;
  while (off < bytes.length) {
    if (bytes.length - off < 12) {
      out.truncated = true;
      break;
    }
    const lengthBytes = bytes.subarray(off, off + 8);
    if (view.getUint32(off + 8, true) !== maskedCrc32c(lengthBytes)) {
      throw new FormatError(`${source}: byte ${off}: the record length's checksum does not match (not a TFRecord file, or damaged)`);
    }
    const length = view.getBigUint64(off, true);
    if (length > BigInt(bytes.length - off - 16)) {
      out.truncated = true;
      break;
    }
    const n = Number(length);
    const data = bytes.subarray(off + 12, off + 12 + n);
    if (view.getUint32(off + 12 + n, true) !== maskedCrc32c(data)) {
      throw new FormatError(`${source}: byte ${off}: the record's data checksum does not match (damaged file)`);
    }
    try {
      decodeEvent(data, out);
    } catch (e) {
      throw new FormatError(`${source}: byte ${off}: not a valid Event record (${(e as Error).message})`);
    }
    off += 16 + n;
  }
  return out;
}

// ---- protobuf wire format, the few fields needed ----

class Reader {
  pos = 0;
  private readonly view: DataView;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.buf.length) throw new Error('varint runs past the end');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asUintN(64, result);
    }
    throw new Error('varint longer than 10 bytes');
  }

  double(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  float(): number {
    this.need(4);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  bytes(): Uint8Array {
    const n = Number(this.varint());
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.advance(8);
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.advance(4);
    else throw new Error(`unsupported wire type ${wireType}`);
  }

  private advance(n: number): void {
    this.need(n);
    this.pos += n;
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error('field runs past the end');
  }
}

const utf8 = new TextDecoder('utf-8');

function* fields(buf: Uint8Array): Generator<{ field: number; wireType: number; r: Reader }> {
  const r = new Reader(buf);
  while (!r.done) {
    const key = Number(r.varint());
    yield { field: key >>> 3, wireType: key & 7, r };
  }
}

function decodeEvent(buf: Uint8Array, out: EventFileContents): void {
  let wallTime = 0;
  let step = 0;
  const values: { tag: string; value: number }[] = [];
  let sessionStart = false;
  for (const { field, wireType, r } of fields(buf)) {
    if (field === 1 && wireType === 1) wallTime = r.double();
    else if (field === 2 && wireType === 0) step = Number(BigInt.asIntN(64, r.varint()));
    else if (field === 3 && wireType === 2) out.fileVersion = utf8.decode(r.bytes());
    else if (field === 5 && wireType === 2) decodeSummary(r.bytes(), values);
    else if (field === 7 && wireType === 2) sessionStart = isSessionStart(r.bytes());
    else r.skip(wireType);
  }
  if (sessionStart) out.restarts.push({ step, at: out.scalars.length });
  for (const v of values) out.scalars.push({ tag: v.tag, step, value: v.value, wallTime });
}

/** SessionLog: status = 1 (START = 1). */
function isSessionStart(buf: Uint8Array): boolean {
  let status = 0;
  for (const { field, wireType, r } of fields(buf)) {
    if (field === 1 && wireType === 0) status = Number(r.varint());
    else r.skip(wireType);
  }
  return status === 1;
}

function decodeSummary(buf: Uint8Array, values: { tag: string; value: number }[]): void {
  for (const { field, wireType, r } of fields(buf)) {
    if (field === 1 && wireType === 2) {
      const v = decodeValue(r.bytes());
      if (v) values.push(v);
    } else r.skip(wireType);
  }
}

/** Summary.Value: tag = 1, simple_value = 2, tensor = 8. Images, histograms and the like give undefined. */
function decodeValue(buf: Uint8Array): { tag: string; value: number } | undefined {
  let tag = '';
  let value: number | undefined;
  for (const { field, wireType, r } of fields(buf)) {
    if (field === 1 && wireType === 2) tag = utf8.decode(r.bytes());
    else if (field === 2 && wireType === 5) value = r.float();
    else if (field === 8 && wireType === 2) value = decodeScalarTensor(r.bytes()) ?? value;
    else r.skip(wireType);
  }
  return value === undefined ? undefined : { tag, value };
}

/** TensorProto holding one float (dtype 1) or double (dtype 2): tensor_content = 4, float_val = 5, double_val = 6. */
function decodeScalarTensor(buf: Uint8Array): number | undefined {
  let dtype = 0;
  let content: Uint8Array | undefined;
  const nums: number[] = [];
  for (const { field, wireType, r } of fields(buf)) {
    if (field === 1 && wireType === 0) dtype = Number(r.varint());
    else if (field === 4 && wireType === 2) content = r.bytes();
    else if (field === 5 && wireType === 5) nums.push(r.float());
    else if (field === 6 && wireType === 1) nums.push(r.double());
    else if ((field === 5 || field === 6) && wireType === 2) {
      const packed = new Reader(r.bytes());
      while (!packed.done) nums.push(field === 5 ? packed.float() : packed.double());
    } else r.skip(wireType);
  }
  if (content) {
    const v = new DataView(content.buffer, content.byteOffset, content.byteLength);
    if (dtype === 1 && content.length === 4) return v.getFloat32(0, true);
    if (dtype === 2 && content.length === 8) return v.getFloat64(0, true);
    return undefined;
  }
  return (dtype === 1 || dtype === 2) && nums.length === 1 ? nums[0] : undefined;
}

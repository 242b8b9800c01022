/**
 * Reads TensorBoard event files: TFRecords (protobuf/tfrecord.ts) of `Event` protos (tensorflow/core/util/event.proto).
 * Only what a report needs is decoded: wall time, step and scalar summaries (`simple_value`, or a scalar float/double
 * `tensor` as TF2 writers store them).
 */
import * as fs from 'node:fs';
import { FormatError } from '../errors.js';
import { tfRecords } from '../protobuf/tfrecord.js';
import { ProtoReader, WIRE_BYTES, WIRE_FIXED32, WIRE_FIXED64, WIRE_VARINT } from '../protobuf/wire.js';

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
  const out: EventFileContents = { scalars: [], restarts: [], truncated: false };
  let end = 0;
  for (const record of tfRecords(bytes, source)) {
    const fail = (what: string): never => {
      throw new FormatError(`${source}: byte ${record.offset}: not a valid Event record (${what})`);
    };
    decodeEvent(new ProtoReader(record.data, fail), out);
    end = record.end;
  }
  out.truncated = end < bytes.length;
  return out;
}

// ---- the protobuf fields a report needs ----

const utf8 = new TextDecoder('utf-8');

function decodeEvent(r: ProtoReader, out: EventFileContents): void {
  let wallTime = 0;
  let step = 0;
  const values: { tag: string; value: number }[] = [];
  let sessionStart = false;
  while (!r.done) {
    const { field, wireType } = r.key();
    if (field === 1 && wireType === WIRE_FIXED64) wallTime = r.double();
    else if (field === 2 && wireType === WIRE_VARINT) step = Number(r.int64());
    else if (field === 3 && wireType === WIRE_BYTES) out.fileVersion = utf8.decode(r.bytesField());
    else if (field === 5 && wireType === WIRE_BYTES) decodeSummary(r.message(), values);
    else if (field === 7 && wireType === WIRE_BYTES) sessionStart = isSessionStart(r.message());
    else r.skip(wireType);
  }
  if (sessionStart) out.restarts.push({ step, at: out.scalars.length });
  for (const v of values) out.scalars.push({ tag: v.tag, step, value: v.value, wallTime });
}

/** SessionLog: status = 1 (START = 1). */
function isSessionStart(r: ProtoReader): boolean {
  let status = 0;
  while (!r.done) {
    const { field, wireType } = r.key();
    if (field === 1 && wireType === WIRE_VARINT) status = r.varint();
    else r.skip(wireType);
  }
  return status === 1;
}

function decodeSummary(r: ProtoReader, values: { tag: string; value: number }[]): void {
  while (!r.done) {
    const { field, wireType } = r.key();
    if (field === 1 && wireType === WIRE_BYTES) {
      const v = decodeValue(r.message());
      if (v) values.push(v);
    } else r.skip(wireType);
  }
}

/** Summary.Value: tag = 1, simple_value = 2, tensor = 8. Images, histograms and the like give undefined. */
function decodeValue(r: ProtoReader): { tag: string; value: number } | undefined {
  let tag = '';
  let value: number | undefined;
  while (!r.done) {
    const { field, wireType } = r.key();
    if (field === 1 && wireType === WIRE_BYTES) tag = utf8.decode(r.bytesField());
    else if (field === 2 && wireType === WIRE_FIXED32) value = r.float();
    else if (field === 8 && wireType === WIRE_BYTES) value = decodeScalarTensor(r.message()) ?? value;
    else r.skip(wireType);
  }
  return value === undefined ? undefined : { tag, value };
}

/** TensorProto holding one float (dtype 1) or double (dtype 2): tensor_content = 4, float_val = 5, double_val = 6. */
function decodeScalarTensor(r: ProtoReader): number | undefined {
  let dtype = 0;
  let content: Uint8Array | undefined;
  const nums: number[] = [];
  while (!r.done) {
    const { field, wireType } = r.key();
    if (field === 1 && wireType === WIRE_VARINT) dtype = r.varint();
    else if (field === 4 && wireType === WIRE_BYTES) content = r.bytesField();
    else if (field === 5 && wireType === WIRE_FIXED32) nums.push(r.float());
    else if (field === 6 && wireType === WIRE_FIXED64) nums.push(r.double());
    else if ((field === 5 || field === 6) && wireType === WIRE_BYTES) {
      const packed = r.message();
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

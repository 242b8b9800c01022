import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Writes TensorBoard event files (`events.out.tfevents.<unix seconds>.<hostname><suffix>`) with scalar summaries.
 *
 * Each event is one TFRecord: uint64 LE length, masked CRC32C of the length, the serialized `Event` proto, masked
 * CRC32C of the data. Every record is handed to the OS with a single append write as soon as it is added, so a
 * crashed run leaves a file whose records up to the crash are all readable; `flush()` also fsyncs.
 */
export class SummaryWriter {
  /** Full path of the event file. */
  readonly file: string;
  private fd: number | undefined;
  private readonly now: () => number;

  constructor(
    readonly logDir: string,
    options: {
      /** Appended to the file name, as TensorFlow's `filename_suffix`. */
      filenameSuffix?: string;
      /** Clock in milliseconds since the epoch (default `Date.now`), used for the file name and default wall times. */
      now?: () => number;
      /**
       * A resumed run's first step, as torch's `SummaryWriter(purge_step=…)`: a SessionLog START at that step tells
       * TensorBoard to drop what earlier files logged at it and after (what the interrupted run logged past its last
       * saved state, which the resumed run logs again).
       */
      purgeStep?: number;
    } = {},
  ) {
    this.now = options.now ?? Date.now;
    fs.mkdirSync(logDir, { recursive: true });
    const startMs = this.now();
    const name = `events.out.tfevents.${Math.floor(startMs / 1000)}.${os.hostname()}${options.filenameSuffix ?? ''}`;
    this.file = path.join(logDir, name);
    this.fd = fs.openSync(this.file, 'a');
    this.writeEvent(encodeEvent(startMs / 1000, 0, { fileVersion: 'brain.Event:2' }));
    if (options.purgeStep !== undefined) {
      if (!Number.isSafeInteger(options.purgeStep))
        throw new RangeError(`SummaryWriter: purgeStep must be an integer, got ${options.purgeStep}`);
      this.writeEvent(encodeEvent(startMs / 1000, options.purgeStep, { sessionStart: true }));
    }
  }

  /**
   * Adds one scalar. `step` is an integer (int64 on disk; safe integers only); `wallTime` is in seconds since the
   * epoch (default: now). The value is stored as float32, as TensorBoard's `simple_value`.
   */
  addScalar(tag: string, value: number, step: number, wallTime?: number): void {
    if (typeof tag !== 'string' || tag.length === 0) throw new TypeError('SummaryWriter.addScalar: tag must be a non-empty string');
    if (typeof value !== 'number') throw new TypeError(`SummaryWriter.addScalar: value for "${tag}" must be a number`);
    if (!Number.isSafeInteger(step)) throw new RangeError(`SummaryWriter.addScalar: step for "${tag}" must be an integer, got ${step}`);
    const wall = wallTime ?? this.now() / 1000;
    if (!Number.isFinite(wall)) throw new RangeError(`SummaryWriter.addScalar: wallTime for "${tag}" must be finite`);
    this.writeEvent(encodeEvent(wall, step, { scalar: { tag, value } }));
  }

  /** Forces written records to disk (fsync). */
  flush(): void {
    if (this.fd !== undefined) fs.fsyncSync(this.fd);
  }

  /** Flushes and closes the file. Further `addScalar` calls throw; calling `close` again does nothing. */
  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  private writeEvent(event: Uint8Array): void {
    if (this.fd === undefined) throw new Error(`SummaryWriter: ${this.file} is closed`);
    const record = tfRecord(event);
    let off = 0;
    while (off < record.length) off += fs.writeSync(this.fd, record, off, record.length - off);
  }
}

// ---- CRC32C (Castagnoli), as TFRecord uses ----

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = CRC32C_TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c(data);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** Frames `data` as one TFRecord. */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

// ---- Event proto, encoded by hand (tensorflow/core/util/event.proto, framework/summary.proto) ----

class ProtoWriter {
  private bytes: number[] = [];

  varint(v: bigint): void {
    // int64 fields encode negative values as their 64-bit two's complement (10 bytes).
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      this.bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.bytes.push(Number(x));
  }

  key(field: number, wireType: number): void {
    this.varint(BigInt((field << 3) | wireType));
  }

  double(field: number, v: number): void {
    this.key(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.bytes.push(...b);
  }

  float(field: number, v: number): void {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.bytes.push(...b);
  }

  int64(field: number, v: number): void {
    this.key(field, 0);
    this.varint(BigInt(v));
  }

  lengthDelimited(field: number, payload: Uint8Array): void {
    this.key(field, 2);
    this.varint(BigInt(payload.length));
    this.bytes.push(...payload);
  }

  string(field: number, s: string): void {
    this.lengthDelimited(field, new TextEncoder().encode(s));
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

function encodeEvent(
  wallTime: number,
  step: number,
  what: { fileVersion: string } | { sessionStart: true } | { scalar: { tag: string; value: number } },
): Uint8Array {
  const event = new ProtoWriter();
  event.double(1, wallTime);
  // proto3 leaves default values out; step 0 is omitted as the reference serializer does.
  if (step !== 0) event.int64(2, step);
  if ('fileVersion' in what) {
    event.string(3, what.fileVersion);
  } else if ('sessionStart' in what) {
    // session_log = 7: SessionLog{status = 1: START (1)}
    const log = new ProtoWriter();
    log.int64(1, 1);
    event.lengthDelimited(7, log.finish());
  } else {
    const value = new ProtoWriter();
    value.string(1, what.scalar.tag);
    value.float(2, what.scalar.value);
    const summary = new ProtoWriter();
    summary.lengthDelimited(1, value.finish());
    event.lengthDelimited(5, summary.finish());
  }
  return event.finish();
}

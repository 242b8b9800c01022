import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tfRecord } from '../protobuf/tfrecord.js';
import { messageBytes, ProtoMessage } from '../protobuf/wire.js';

/**
 * Writes TensorBoard event files (`events.out.tfevents.<unix seconds>.<hostname><suffix>`) with scalar summaries.
 *
 * Each event is one TFRecord (protobuf/tfrecord.ts) holding a serialized `Event` proto. Every record is handed to the
 * OS with a single append write as soon as it is added, so a crashed run leaves a file whose records up to the crash
 * are all readable; `flush()` also fsyncs.
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

// ---- Event proto (tensorflow/core/util/event.proto, framework/summary.proto) ----

function encodeEvent(
  wallTime: number,
  step: number,
  what: { fileVersion: string } | { sessionStart: true } | { scalar: { tag: string; value: number } },
): Uint8Array {
  const event = new ProtoMessage().double(1, wallTime);
  // proto3 leaves default values out; step 0 is omitted as the reference serializer does.
  if (step !== 0) event.int(2, step);
  if ('fileVersion' in what) {
    event.string(3, what.fileVersion);
  } else if ('sessionStart' in what) {
    // session_log = 7: SessionLog{status = 1: START (1)}
    event.message(7, new ProtoMessage().int(1, 1));
  } else {
    const value = new ProtoMessage().string(1, what.scalar.tag).float(2, what.scalar.value);
    event.message(5, new ProtoMessage().message(1, value));
  }
  return messageBytes(event);
}

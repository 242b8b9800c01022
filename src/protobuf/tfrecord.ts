/**
 * TFRecord framing (TensorBoard event files): uint64 LE length, masked CRC32C of the length, the data, masked
 * CRC32C of the data.
 */
import { FormatError } from '../errors.js';
import { maskedCrc32c } from './crc32c.js';

const HEADER_BYTES = 12;
const FOOTER_BYTES = 4;

/** Frames `data` as one TFRecord. */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + data.length + FOOTER_BYTES);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, HEADER_BYTES);
  view.setUint32(HEADER_BYTES + data.length, maskedCrc32c(data), true);
  return out;
}

export interface TfRecord {
  /** Where the record starts in the file. */
  offset: number;
  /** Where the next record starts. */
  end: number;
  /** The record's data (a view, not a copy). */
  data: Uint8Array;
}

/**
 * The records of `bytes`, in order. A checksum that does not match is a FormatError naming `source` and the byte
 * offset; bytes that end inside a record (what a writer killed mid-write leaves) end the records: the last one's
 * `end` is then short of the length of `bytes`.
 */
export function* tfRecords(bytes: Uint8Array, source: string): Generator<TfRecord> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (bytes.length - offset >= HEADER_BYTES) {
    if (view.getUint32(offset + 8, true) !== maskedCrc32c(bytes.subarray(offset, offset + 8))) {
      throw new FormatError(`${source}: byte ${offset}: the record length's checksum does not match (not a TFRecord file, or damaged)`);
    }
    const length = view.getBigUint64(offset, true);
    if (length > BigInt(bytes.length - offset - HEADER_BYTES - FOOTER_BYTES)) return;
    const start = offset + HEADER_BYTES;
    const data = bytes.subarray(start, start + Number(length));
    if (view.getUint32(start + data.length, true) !== maskedCrc32c(data)) {
      throw new FormatError(`${source}: byte ${offset}: the record's data checksum does not match (damaged file)`);
    }
    const end = start + data.length + FOOTER_BYTES;
    yield { offset, end, data };
    offset = end;
  }
}

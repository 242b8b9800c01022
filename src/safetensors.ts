/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {…}}`, then the raw little-endian data.
 * Every header field is checked against the file before anything is allocated, so a damaged or hostile file
 * gives one clear error instead of a crash or a huge allocation.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from './tf.js';
import { FormatError } from './errors.js';
import { writeAll, writeFileAtomicWith } from './fsutil.js';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_SIZE: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Bytes one element of `dtype` takes on disk. */
export function dtypeBytes(dtype: SafetensorsDtype): number {
  return DTYPE_SIZE[dtype];
}

/** A tensor as stored on disk, converted to float32 (floats) or int32 (integers). */
export interface RawTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

export interface HeaderEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: Map<string, HeaderEntry>;
  metadata: Record<string, string>;
  /** Byte offset of the data section in the file. */
  dataStart: number;
}

/** Largest header we accept (HF's own limit is 100 MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Parses and validates the header of a safetensors file of `fileSize` bytes whose first bytes are `head`. */
export function parseHeader(readAt: (offset: number, length: number) => Uint8Array, fileSize: number, source: string): SafetensorsHeader {
  const fail = (what: string): never => {
    throw new FormatError(`${source}: not a valid safetensors file: ${what}`);
  };
  if (fileSize < 8) fail(`the file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const lenBytes = readAt(0, 8);
  const headerLen = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLen > fileSize - 8)
    fail(`header length ${headerLen} is larger than the rest of the file (${fileSize - 8} bytes); the file may be truncated`);
  if (headerLen > MAX_HEADER_BYTES) fail(`header length ${headerLen} exceeds ${MAX_HEADER_BYTES} bytes`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(readAt(8, headerLen)));
  } catch (e) {
    fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('the header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = fileSize - dataStart;
  const entries = new Map<string, HeaderEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('"__metadata__" is not an object');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`"__metadata__.${k}" is not a string`);
      }
      metadata = value as Record<string, string>;
      continue;
    }
    const at = `tensor "${name}"`;
    if (value === null || typeof value !== 'object') fail(`${at} is not an object`);
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZE))
      fail(`${at} has unknown dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(DTYPE_SIZE).join(', ')})`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      fail(`${at} has an invalid shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`${at} has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLen)
      fail(`${at} has data_offsets [${begin}, ${end}] outside the data section of ${dataLen} bytes; the file may be truncated`);
    let elements = 1;
    for (const d of shape as number[]) elements *= d;
    const expected = elements * DTYPE_SIZE[dtype as SafetensorsDtype];
    if (expected !== end - begin)
      fail(
        `${at} has shape [${(shape as number[]).join(', ')}] (${expected} bytes of ${dtype}) but its byte range holds ${end - begin} bytes`,
      );
    entries.set(name, { dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end });
  }
  const sorted = [...entries.entries()].filter(([, e]) => e.end > e.begin).sort((a, b) => a[1].begin - b[1].begin);
  for (let i = 1; i < sorted.length; i++) {
    const [[previous, before], [name, entry]] = [sorted[i - 1]!, sorted[i]!];
    if (entry.begin < before.end) fail(`tensors "${previous}" and "${name}" overlap`);
  }
  return { entries, metadata, dataStart };
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** Converts the raw little-endian bytes of one tensor to float32 / int32. */
export function decodeTensorBytes(bytes: Uint8Array, dtype: SafetensorsDtype): Float32Array | Int32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / DTYPE_SIZE[dtype];
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      new Uint8Array(out.buffer).set(bytes);
      return out;
    }
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      return out;
    }
    case 'BF16': {
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return new Float32Array(bits.buffer);
    }
    case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(view.getBigInt64(i * 8, true));
      return out;
    }
    case 'I32': {
      const out = new Int32Array(n);
      new Uint8Array(out.buffer).set(bytes);
      return out;
    }
    case 'I16': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true);
      return out;
    }
    case 'I8': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getInt8(i);
      return out;
    }
    case 'U8':
    case 'BOOL':
      return Int32Array.from(bytes);
  }
}

/**
 * A tensor of a safetensors file whose data is read (and converted to float32/int32) only when `read` is called,
 * so that a caller can hold one tensor at a time instead of the whole file.
 */
export interface LazyTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  read(): Float32Array | Int32Array;
  /** `length` bytes of the stored data from byte `offset`, as on disk (for comparing tensors piece by piece). */
  readBytes?(offset: number, length: number): Uint8Array;
}

function readFileRange(file: string, fd: number, offset: number, length: number): Uint8Array {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, offset + done);
    if (n === 0) throw new FormatError(`${file}: not a valid safetensors file: unexpected end of file`);
    done += n;
  }
  return buf;
}

function withFile<T>(file: string, use: (fd: number) => T): T {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new FormatError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return use(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The tensors of a safetensors file with their data left on disk; the header is read and validated now. */
export function openSafetensorsFile(file: string): { tensors: Map<string, LazyTensor>; metadata: Record<string, string> } {
  const header = withFile(file, (fd) => parseHeader((o, l) => readFileRange(file, fd, o, l), fs.fstatSync(fd).size, file));
  const tensors = new Map<string, LazyTensor>();
  for (const [name, e] of header.entries) {
    tensors.set(name, {
      dtype: e.dtype,
      shape: e.shape,
      read: () => withFile(file, (fd) => decodeTensorBytes(readFileRange(file, fd, header.dataStart + e.begin, e.end - e.begin), e.dtype)),
      readBytes: (offset, length) => {
        if (offset < 0 || length < 0 || offset + length > e.end - e.begin) throw new RangeError(`${name}: bytes out of range`);
        return withFile(file, (fd) => readFileRange(file, fd, header.dataStart + e.begin + offset, length));
      },
    });
  }
  return { tensors, metadata: header.metadata };
}

/** Reads every tensor of a safetensors file as float32/int32 arrays, validating the header first. */
export function readSafetensorsFile(file: string): { tensors: Map<string, RawTensor>; metadata: Record<string, string> } {
  return withFile(file, (fd) => {
    const readAt = (offset: number, length: number) => readFileRange(file, fd, offset, length);
    const header = parseHeader(readAt, fs.fstatSync(fd).size, file);
    const tensors = new Map<string, RawTensor>();
    for (const [name, e] of header.entries) {
      const bytes = readAt(header.dataStart + e.begin, e.end - e.begin);
      tensors.set(name, { dtype: e.dtype, shape: e.shape, data: decodeTensorBytes(bytes, e.dtype) });
    }
    return { tensors, metadata: header.metadata };
  });
}

/** Parses a safetensors file held in memory. */
export function readSafetensorsBytes(
  bytes: Uint8Array,
  source = 'safetensors data',
): { tensors: Map<string, RawTensor>; metadata: Record<string, string> } {
  const readAt = (offset: number, length: number): Uint8Array => bytes.subarray(offset, offset + length);
  const header = parseHeader(readAt, bytes.byteLength, source);
  const tensors = new Map<string, RawTensor>();
  for (const [name, e] of header.entries) {
    const raw = bytes.slice(header.dataStart + e.begin, header.dataStart + e.end);
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data: decodeTensorBytes(raw, e.dtype) });
  }
  return { tensors, metadata: header.metadata };
}

/** Loads a safetensors file as tf tensors (float32 or int32), like `safetensors.torch.load_file`. */
export function loadSafetensors(file: string): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, t] of readSafetensorsFile(file).tensors) {
    out[name] = t.data instanceof Float32Array ? tf.tensor(t.data, t.shape, 'float32') : tf.tensor(t.data, t.shape, 'int32');
  }
  return out;
}

export type TensorLike = tf.Tensor | { shape: number[]; data: Float32Array | Int32Array };

interface PlannedFile {
  header: Uint8Array;
  tensors: { bytes: () => Uint8Array }[];
  dataBytes: number;
}

/**
 * The header of a safetensors file for `tensors` in HF's layout (keys sorted, `__metadata__` first, data 8-byte
 * aligned), and a reader of each tensor's bytes in file order; nothing is copied until a reader is called.
 */
function planFile(tensors: Map<string, TensorLike> | Record<string, TensorLike>, metadata: Record<string, string>): PlannedFile {
  const entries = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  const header: Record<string, unknown> = { __metadata__: metadata };
  const readers: { bytes: () => Uint8Array }[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    const isInt = t instanceof tf.Tensor ? t.dtype === 'int32' : t.data instanceof Int32Array;
    const size = tf.util.sizeFromShape(t.shape) * 4;
    header[name] = { dtype: isInt ? 'I32' : 'F32', shape: [...t.shape], data_offsets: [offset, offset + size] };
    readers.push({
      bytes() {
        const data = t instanceof tf.Tensor ? t.dataSync() : t.data;
        const f =
          data instanceof Int32Array || data instanceof Float32Array
            ? data
            : isInt
              ? Int32Array.from(data as ArrayLike<number>)
              : Float32Array.from(data as ArrayLike<number>);
        return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
      },
    });
    offset += size;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf-8');
  const head = new Uint8Array(8 + headerBytes.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  head.set(headerBytes, 8);
  return { header: head, tensors: readers, dataBytes: offset };
}

/** Serialises tensors (float32 → F32, int32 → I32) in HF's layout: keys sorted, `__metadata__` first. */
export function encodeSafetensors(
  tensors: Map<string, TensorLike> | Record<string, TensorLike>,
  metadata: Record<string, string> = { format: 'pt' },
): Uint8Array {
  const plan = planFile(tensors, metadata);
  const out = new Uint8Array(plan.header.byteLength + plan.dataBytes);
  out.set(plan.header, 0);
  let at = plan.header.byteLength;
  for (const t of plan.tensors) {
    const bytes = t.bytes();
    out.set(bytes, at);
    at += bytes.byteLength;
  }
  return out;
}

/** Writes a safetensors file atomically (temp file + fsync + rename). */
export function saveSafetensors(
  file: string,
  tensors: Map<string, TensorLike> | Record<string, TensorLike>,
  metadata: Record<string, string> = { format: 'pt' },
): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  // Tensor by tensor: a checkpoint is never held in memory a second time while it is written.
  const plan = planFile(tensors, metadata);
  writeFileAtomicWith(file, (fd) => {
    writeAll(fd, plan.header);
    for (const t of plan.tensors) writeAll(fd, t.bytes());
  });
}

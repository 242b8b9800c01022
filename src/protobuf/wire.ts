/**
 * Protocol Buffers wire format. Writing: a message is a list of byte chunks, so a message never copies the chunks of
 * the messages it embeds, and a large payload (a weight tensor) can stay unread until the file is written
 * (`LazyBytes`): a model of hundreds of MB is never held in memory whole. Reading: `ProtoReader` walks the fields of
 * one message. Only what t5cls's files need: varints (int64 included), fixed32 floats, fixed64 doubles,
 * length-delimited bytes, strings and messages.
 */

/** Bytes produced on demand, of a length known in advance (a weight read from its checkpoint when written). */
export interface LazyBytes {
  readonly byteLength: number;
  bytes(): Uint8Array;
}

export type Chunk = Uint8Array | LazyBytes;

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_BYTES = 2;
export const WIRE_FIXED32 = 5;

function varint(value: number | bigint): Uint8Array {
  // Negative int64 values are sent as their 64-bit two's complement (10 bytes).
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

const utf8 = new TextEncoder();

export class ProtoMessage {
  readonly chunks: Chunk[] = [];
  byteLength = 0;

  private push(chunk: Chunk): this {
    this.chunks.push(chunk);
    this.byteLength += chunk.byteLength;
    return this;
  }

  private tag(field: number, wireType: number): this {
    return this.push(varint(field * 8 + wireType));
  }

  /** Any varint field: int32, int64, uint64, enum, bool (as 0/1). */
  int(field: number, value: number | bigint): this {
    return this.tag(field, WIRE_VARINT).push(varint(value));
  }

  float(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    return this.tag(field, WIRE_FIXED32).push(b);
  }

  double(field: number, value: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    return this.tag(field, WIRE_FIXED64).push(b);
  }

  bytes(field: number, data: Chunk): this {
    return this.tag(field, WIRE_BYTES).push(varint(data.byteLength)).push(data);
  }

  string(field: number, s: string): this {
    return this.bytes(field, utf8.encode(s));
  }

  message(field: number, m: ProtoMessage): this {
    this.tag(field, WIRE_BYTES).push(varint(m.byteLength));
    for (const c of m.chunks) this.push(c);
    return this;
  }
}

/** The bytes of a chunk, produced now if it is lazy; a producer that breaks its announced length is a bug. */
export function chunkBytes(chunk: Chunk): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  const bytes = chunk.bytes();
  if (bytes.byteLength !== chunk.byteLength)
    throw new Error(`lazy chunk produced ${bytes.byteLength} bytes, announced ${chunk.byteLength}`);
  return bytes;
}

/** The whole message in one array (for messages that fit in memory: events, graphs of a few nodes, tests). */
export function messageBytes(m: ProtoMessage): Uint8Array {
  const out = new Uint8Array(m.byteLength);
  let at = 0;
  for (const c of m.chunks) {
    const b = chunkBytes(c);
    out.set(b, at);
    at += b.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

export interface ProtoKey {
  field: number;
  wireType: number;
}

/**
 * Reads the fields of one message in order. Malformed input calls `fail`, which throws the caller's error (one that
 * names the file). `varint()` answers a number: exact up to 2^53, which covers every length, enum and count;
 * `int64()` answers an int64 field exactly.
 */
export class ProtoReader {
  private pos: number;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly fail: (what: string) => never,
    start = 0,
    private readonly end = bytes.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  key(): ProtoKey {
    const key = this.varint();
    return { field: Math.floor(key / 8), wireType: key % 8 };
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.nextVarintByte();
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    return this.fail('varint too long');
  }

  /** A varint as a signed 64-bit integer (negative values are their two's complement, 10 bytes). */
  int64(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const b = this.nextVarintByte();
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asIntN(64, result);
    }
    return this.fail('varint too long');
  }

  float(): number {
    const at = this.advance(4);
    return new DataView(this.bytes.buffer, this.bytes.byteOffset + at, 4).getFloat32(0, true);
  }

  double(): number {
    const at = this.advance(8);
    return new DataView(this.bytes.buffer, this.bytes.byteOffset + at, 8).getFloat64(0, true);
  }

  /** A length-delimited field's content (a view, not a copy). */
  bytesField(): Uint8Array {
    const at = this.advance(this.varint());
    return this.bytes.subarray(at, this.pos);
  }

  /** A reader over an embedded message (or over a packed repeated field's content). */
  message(): ProtoReader {
    const at = this.advance(this.varint());
    return new ProtoReader(this.bytes, this.fail, at, this.pos);
  }

  skip(wireType: number): void {
    if (wireType === WIRE_VARINT) this.varint();
    else if (wireType === WIRE_FIXED64) this.advance(8);
    else if (wireType === WIRE_BYTES) this.advance(this.varint());
    else if (wireType === WIRE_FIXED32) this.advance(4);
    else this.fail(`unsupported wire type ${wireType}`);
  }

  private nextVarintByte(): number {
    if (this.pos >= this.end) return this.fail('truncated varint');
    return this.bytes[this.pos++]!;
  }

  /** Moves past `n` bytes, answering where they start. */
  private advance(n: number): number {
    const at = this.pos;
    if (n > this.end - at) this.fail('truncated field');
    this.pos = at + n;
    return at;
  }
}

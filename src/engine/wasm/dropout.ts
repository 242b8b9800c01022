/**
 * The dropout function for the embedded backends: Alea's stream (kernels/alea.ts) stepped in wasm, on the wasm heap
 * where tensors live there, else on staged chunks of the cpu backend's arrays.
 */
import {
  F32,
  I32,
  instantiate,
  OP,
  sleb,
  STAGE_CHUNK,
  stagingSlots,
  uleb,
  vec,
  type Bytes,
  type CompiledKernel,
  type FunctionEntry,
} from './simd.js';

/** Unsigned LEB128 as a signed (sleb) immediate, for non-negative values up to 2^53. */
function slebNonNegative(value: number): Bytes {
  const out: Bytes = [];
  let v = value;
  for (;;) {
    const byte = v % 128;
    v = Math.floor(v / 128);
    if (v === 0 && (byte & 0x40) === 0) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/**
 * Inverted dropout with the Alea generator stepped in 64-bit integers (kernels/alea.ts): Alea's state values are exact
 * multiples of 2^-32, so its step t = 2091639·s0 + c·2^-32 is the multiply-with-carry x = 2091639·k0 + c,
 * c = x >> 32, k = x mod 2^32 with s = k·2^-32, and f32(s) = f32(k)·2^-32. Parameters: x, y, mask pointers, byte
 * length (a multiple of 4), k0, k1, k2, c (the generator's state, s times 2^32), the keep threshold and scale (f32),
 * a pointer where the state after the last element is stored as four u32 (k0, k1, k2, c; 0: not stored), and a relu
 * flag. For each element: u = f32(k)·2^-32 of the next step (k < 2^32, so the signed conversion is exact),
 * m = u >= threshold ? scale : 0; without relu mask = m, y = x·m; with relu (dropout(relu(x)), whose gradient factor
 * is keep · step(x)) mask = x > 0 ? m : z, y = x > 0 ? x·m : z, z = 0 (NaN where x is NaN, as relu keeps NaN).
 */
function dropoutFunction(): FunctionEntry {
  const [X, Y, MASK, LEN, A0, A1, A2, CIN, THRESHOLD, SCALE, STATE, RELU] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const [I, BM, ZB, K0, K1, K2, C, T, M, V] = [12, 13, 14, 15, 16, 17, 18, 19, 20, 21];
  const I64 = 0x7e;
  const get = (l: number) => [OP.localGet, ...uleb(l)];
  const set = (l: number) => [OP.localSet, ...uleb(l)];
  const f32Const = (v: number) => [0x43, ...new Uint8Array(new Float32Array([v]).buffer)];
  const i64Const = (v: number) => [0x42, ...slebNonNegative(v)];
  const I64_EXTEND_I32_U = 0xad;
  const I32_WRAP_I64 = 0xa7;
  const I64_MUL = 0x7e;
  const I64_ADD = 0x7c;
  const I64_AND = 0x83;
  const I64_SHR_U = 0x88;
  const F32_CONVERT_I64_S = 0xb4;
  const F32_MUL = 0x94;
  const F32_GE = 0x60;
  const F32_GT = 0x5e;
  const F32_NE = 0x5c;
  const I32_SUB = 0x6b;
  const I32_AND = 0x71;
  const I32_OR = 0x72;
  const I32_XOR = 0x73;
  const I32_REINTERPRET_F32 = 0xbc;
  const F32_REINTERPRET_I32 = 0xbe;
  const IF = 0x04;
  const ELSE = 0x05;
  const F32_LOAD = 0x2a;
  const F32_STORE = 0x38;
  const I32_STORE = 0x36;
  const storeAt = (ptr: number, value: Bytes) => [...get(ptr), ...get(I), OP.i32Add, ...value, F32_STORE, 2, 0];
  const storeBitsAt = (ptr: number, bits: Bytes) => [
    ...get(ptr),
    ...get(I),
    OP.i32Add,
    ...bits,
    ...get(BM),
    I32_AND,
    ...get(ZB),
    ...get(BM),
    OP.i32Const,
    ...sleb(-1),
    I32_XOR,
    I32_AND,
    I32_OR,
    I32_STORE,
    2,
    0,
  ];
  const storeState = (local: number, offset: number) => [...get(STATE), ...get(local), I32_WRAP_I64, I32_STORE, 2, ...uleb(offset)];
  const expr: Bytes = [
    ...get(A0),
    I64_EXTEND_I32_U,
    ...set(K0),
    ...get(A1),
    I64_EXTEND_I32_U,
    ...set(K1),
    ...get(A2),
    I64_EXTEND_I32_U,
    ...set(K2),
    ...get(CIN),
    I64_EXTEND_I32_U,
    ...set(C),
    OP.block,
    0x40,
    ...get(LEN),
    OP.i32Eqz,
    OP.brIf,
    0,
    OP.loop,
    0x40,
    ...i64Const(2091639),
    ...get(K0),
    I64_MUL,
    ...get(C),
    I64_ADD,
    ...set(T),
    ...get(K1),
    ...set(K0),
    ...get(K2),
    ...set(K1),
    ...get(T),
    ...i64Const(0xffffffff),
    I64_AND,
    ...set(K2),
    ...get(T),
    ...i64Const(32),
    I64_SHR_U,
    ...set(C),
    // m = u >= threshold ? scale : +0, branch-free: scale's bits and-ed with all ones or with 0.
    ...get(SCALE),
    I32_REINTERPRET_F32,
    OP.i32Const,
    ...sleb(0),
    ...get(K2),
    F32_CONVERT_I64_S,
    ...f32Const(2 ** -32),
    F32_MUL,
    ...get(THRESHOLD),
    F32_GE,
    I32_SUB,
    I32_AND,
    F32_REINTERPRET_I32,
    ...set(M),
    ...get(X),
    ...get(I),
    OP.i32Add,
    F32_LOAD,
    2,
    0,
    ...set(V),
    ...get(RELU),
    IF,
    0x40,
    // Branch-free (a data-dependent select becomes a mispredicted branch): BM = all ones where x > 0, ZB = the bits
    // of x where x is NaN, else 0; each output is (bits & BM) | (ZB & ~BM).
    OP.i32Const,
    ...sleb(0),
    ...get(V),
    ...f32Const(0),
    F32_GT,
    I32_SUB,
    ...set(BM),
    ...get(V),
    I32_REINTERPRET_F32,
    OP.i32Const,
    ...sleb(0),
    ...get(V),
    ...get(V),
    F32_NE,
    I32_SUB,
    I32_AND,
    ...set(ZB),
    ...storeBitsAt(MASK, [...get(M), I32_REINTERPRET_F32]),
    ...storeBitsAt(Y, [...get(V), ...get(M), F32_MUL, I32_REINTERPRET_F32]),
    ELSE,
    ...storeAt(MASK, get(M)),
    ...storeAt(Y, [...get(V), ...get(M), F32_MUL]),
    OP.end,
    ...get(I),
    OP.i32Const,
    ...sleb(4),
    OP.i32Add,
    OP.localTee,
    ...uleb(I),
    ...get(LEN),
    OP.i32LtU,
    OP.brIf,
    0,
    OP.end,
    OP.end,
    ...get(STATE),
    IF,
    0x40,
    ...storeState(K0, 0),
    ...storeState(K1, 4),
    ...storeState(K2, 8),
    ...storeState(C, 12),
    OP.end,
    OP.end,
  ];
  const locals: Bytes[] = [
    [...uleb(3), I32],
    [...uleb(5), I64],
    [...uleb(2), F32],
  ];
  const fn = [...vec(locals), ...expr];
  const params = [I32, I32, I32, I32, I32, I32, I32, I32, F32, F32, I32, I32].map((t) => [t]);
  return { type: [0x60, ...vec(params), ...vec([])], code: [...uleb(fn.length), ...fn] };
}

const dropoutFns = new WeakMap<WebAssembly.Memory, CompiledKernel | undefined>();

/** The Alea dropout function (see dropoutFunction) compiled against `memory`, or undefined. */
export function dropoutKernelFor(memory: WebAssembly.Memory | undefined): CompiledKernel | undefined {
  if (!memory) return undefined;
  if (!dropoutFns.has(memory)) dropoutFns.set(memory, instantiate([dropoutFunction()], memory)?.[0]);
  return dropoutFns.get(memory);
}

/** Alea's state as dropoutFunction takes it: s0..s2 times 2^32 (whole numbers below 2^32) and the carry c. */
export interface DropoutState {
  k0: number;
  k1: number;
  k2: number;
  c: number;
}

/**
 * dropoutFunction over arrays outside any wasm heap (the cpu backend): a chunk at a time in the staging memory, the
 * generator's state carried from one chunk to the next, so the masks are those of one pass. False (nothing done)
 * when the function cannot be compiled here.
 */
export function stagedDropout(
  x: Float32Array,
  y: Float32Array,
  mask: Float32Array,
  state: DropoutState,
  threshold: number,
  scale: number,
  relu: boolean,
): boolean {
  const { memory, slots } = stagingSlots([STAGE_CHUNK, STAGE_CHUNK, STAGE_CHUNK, 4]);
  const kernel = dropoutKernelFor(memory);
  if (!kernel) return false;
  const [sx, sy, sm, ss] = slots as [Float32Array, Float32Array, Float32Array, Float32Array];
  const st = new Uint32Array(ss.buffer, ss.byteOffset, 4);
  let { k0, k1, k2, c } = state;
  for (let from = 0; from < x.length; from += STAGE_CHUNK) {
    const len = Math.min(STAGE_CHUNK, x.length - from);
    sx.set(x.subarray(from, from + len));
    kernel(sx.byteOffset, sy.byteOffset, sm.byteOffset, 4 * len, k0, k1, k2, c, threshold, scale, ss.byteOffset, relu ? 1 : 0);
    [k0, k1, k2, c] = [st[0]!, st[1]!, st[2]!, st[3]!];
    y.set(sy.subarray(0, len), from);
    mask.set(sm.subarray(0, len), from);
  }
  return true;
}

/**
 * Element-wise float32 kernels compiled to WebAssembly SIMD at run time, working directly on the tfjs wasm
 * backend's heap (the module imports that same memory).
 *
 * A kernel is written as a little expression program over 4-lane vectors: inputs are loaded, scalars splatted,
 * intermediate values bound to locals, outputs stored. WebAssembly float arithmetic is IEEE single precision with no
 * fused multiply-add, so a kernel gives bit for bit what the same sequence of tfjs float32 ops gives. The loop
 * covers the largest multiple of 4 elements; the caller finishes the rest (see `runElementwise`).
 *
 * Encoding reference: the WebAssembly core specification (binary format) and its SIMD proposal opcodes.
 */

export type Bytes = number[];

export function uleb(value: number): Bytes {
  const out: Bytes = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

export function sleb(value: number): Bytes {
  const out: Bytes = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function name(s: string): Bytes {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

function section(id: number, content: Bytes): Bytes {
  return [id, ...uleb(content.length), ...content];
}

export function vec(items: Bytes[]): Bytes {
  return [...uleb(items.length), ...items.flat()];
}

export const I32 = 0x7f;
export const F32 = 0x7d;
const V128 = 0x7b;

export const OP = {
  block: 0x02,
  loop: 0x03,
  brIf: 0x0d,
  end: 0x0b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32LtU: 0x49,
  i32Add: 0x6a,
  simd: 0xfd,
} as const;

const SIMD = {
  load: 0x00,
  store: 0x0b,
  v128Const: 0x0c,
  f32x4Nearest: 0x6a,
  i32x4Shl: 0xab,
  i32x4Add: 0xae,
  i32x4TruncSatF32x4S: 0xf8,
  f32x4Splat: 0x13,
  f32x4Ge: 0x46,
  f32x4Gt: 0x44,
  v128And: 0x4e,
  bitselect: 0x52,
  f32x4Abs: 0xe0,
  f32x4Neg: 0xe1,
  f32x4Sqrt: 0xe3,
  f32x4Add: 0xe4,
  f32x4Sub: 0xe5,
  f32x4Mul: 0xe6,
  f32x4Div: 0xe7,
  f32x4Min: 0xe8,
  f32x4Max: 0xe9,
} as const;

const simd = (op: number): Bytes => [OP.simd, ...uleb(op)];

function v128Const(lanes: Float32Array | Int32Array): Bytes {
  return [...simd(SIMD.v128Const), ...new Uint8Array(lanes.buffer, lanes.byteOffset, 16)];
}

/** A 4-lane value in a kernel program: code that leaves one v128 on the stack. */
export interface Vec {
  readonly code: Bytes;
}

export interface KernelBuilder {
  /** Input array `k` at the current 4 elements. */
  input(k: number): Vec;
  /** Scalar parameter `k`, in all 4 lanes. */
  scalar(k: number): Vec;
  add(a: Vec, b: Vec): Vec;
  sub(a: Vec, b: Vec): Vec;
  mul(a: Vec, b: Vec): Vec;
  div(a: Vec, b: Vec): Vec;
  max(a: Vec, b: Vec): Vec;
  min(a: Vec, b: Vec): Vec;
  sqrt(a: Vec): Vec;
  /** a >= b ? x : y, lane by lane. */
  selectGe(a: Vec, b: Vec, x: Vec, y: Vec): Vec;
  /** A float32 constant in all 4 lanes. */
  constant(value: number): Vec;
  /**
   * e^a (Cephes expf: n = round(a·log2 e), polynomial on the remainder, times 2^n), within 2 ulp for a ≥ -87;
   * below, the result is e^-87 (about 1.6e-38) rather than smaller.
   */
  exp(a: Vec): Vec;
  /** Evaluates `v` once into a local; the result reads the local. */
  bind(v: Vec): Vec;
  /** Stores `v` to output array `k` (stores happen after every load of the iteration). */
  output(k: number, v: Vec): void;
  /** Adds `v` into 4-lane float32 accumulator `k`, written to the sums array at the end (lanes 4k … 4k+3). */
  sum(k: number, v: Vec): void;
  /** Like `sum`, but accumulator `k` keeps the lane-wise maximum (starting from -Infinity). */
  max4(k: number, v: Vec): void;
}

export interface ElementwiseSpec {
  outputs: number;
  inputs: number;
  scalars: number;
  /** Accumulators (see KernelBuilder.sum); the kernel then takes a pointer to 4 × sums floats after the inputs. */
  sums?: number;
  body(b: KernelBuilder): void;
}

/**
 * The function's parameters: output pointers, input pointers, the sums pointer (when it has sums), byte length (a
 * multiple of 16), then f32 scalars. Returns its code entry (locals + body) and its type.
 */
function compileElementwise(spec: ElementwiseSpec): { type: Bytes; code: Bytes } {
  const nSums = spec.sums ?? 0;
  const sumsParam = spec.outputs + spec.inputs;
  const nPtr = spec.outputs + spec.inputs + (nSums > 0 ? 1 : 0);
  const lenParam = nPtr;
  const firstScalar = nPtr + 1;
  const nParams = firstScalar + spec.scalars;
  const iLocal = nParams;
  let nextV = iLocal + 1;
  const vLocals: number[] = [];
  const newV = () => {
    const idx = nextV++;
    vLocals.push(idx);
    return idx;
  };
  const inputLocal = Array.from({ length: spec.inputs }, () => newV());
  const scalarLocal = Array.from({ length: spec.scalars }, () => newV());
  const sumLocal = Array.from({ length: nSums }, () => newV());
  const get = (idx: number): Vec => ({ code: [OP.localGet, ...uleb(idx)] });
  const bin =
    (op: number) =>
    (a: Vec, b: Vec): Vec => ({ code: [...a.code, ...b.code, ...simd(op)] });
  const bodyCode: Bytes = [];
  const stores: Bytes = [];
  const usedInputs = new Set<number>();
  const maxAccumulators = new Set<number>();
  const builder: KernelBuilder = {
    input(k) {
      if (k < 0 || k >= spec.inputs) throw new Error(`input ${k} out of range`);
      usedInputs.add(k);
      return get(inputLocal[k]!);
    },
    scalar(k) {
      if (k < 0 || k >= spec.scalars) throw new Error(`scalar ${k} out of range`);
      return get(scalarLocal[k]!);
    },
    add: bin(SIMD.f32x4Add),
    sub: bin(SIMD.f32x4Sub),
    mul: bin(SIMD.f32x4Mul),
    div: bin(SIMD.f32x4Div),
    max: bin(SIMD.f32x4Max),
    min: bin(SIMD.f32x4Min),
    sqrt: (a) => ({ code: [...a.code, ...simd(SIMD.f32x4Sqrt)] }),
    selectGe: (a, b, x, y) => ({ code: [...x.code, ...y.code, ...a.code, ...b.code, ...simd(SIMD.f32x4Ge), ...simd(SIMD.bitselect)] }),
    bind(v) {
      const idx = newV();
      bodyCode.push(...v.code, OP.localSet, ...uleb(idx));
      return get(idx);
    },
    output(k, v) {
      if (k < 0 || k >= spec.outputs) throw new Error(`output ${k} out of range`);
      // address = out_k + i
      stores.push(OP.localGet, ...uleb(k), OP.localGet, ...uleb(iLocal), OP.i32Add, ...v.code, ...simd(SIMD.store), 2, 0);
    },
    constant: (value) => ({ code: v128Const(new Float32Array([value, value, value, value])) }),
    exp(a) {
      const c = builder.constant;
      const x = builder.bind(builder.max(a, c(-87)));
      const n = builder.bind({ code: [...builder.mul(x, c(Math.LOG2E)).code, ...simd(SIMD.f32x4Nearest)] });
      const r = builder.bind(builder.sub(builder.sub(x, builder.mul(n, c(0.693359375))), builder.mul(n, c(-2.1219444e-4))));
      let p = c(1.98756915e-4);
      for (const coef of [1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1]) {
        p = builder.add(builder.mul(p, r), c(coef));
      }
      const y = builder.add(builder.add(builder.mul(builder.mul(p, r), r), r), c(1));
      // 2^n as float bits: (n + 127) << 23.
      const pow2: Vec = {
        code: [
          ...n.code,
          ...simd(SIMD.i32x4TruncSatF32x4S),
          ...v128Const(new Int32Array([127, 127, 127, 127])),
          ...simd(SIMD.i32x4Add),
          OP.i32Const,
          ...sleb(23),
          ...simd(SIMD.i32x4Shl),
        ],
      };
      return builder.mul(y, pow2);
    },
    sum(k, v) {
      if (k < 0 || k >= nSums) throw new Error(`sum ${k} out of range`);
      bodyCode.push(OP.localGet, ...uleb(sumLocal[k]!), ...v.code, ...simd(SIMD.f32x4Add), OP.localSet, ...uleb(sumLocal[k]!));
    },
    max4(k, v) {
      if (k < 0 || k >= nSums) throw new Error(`sum ${k} out of range`);
      maxAccumulators.add(k);
      bodyCode.push(OP.localGet, ...uleb(sumLocal[k]!), ...v.code, ...simd(SIMD.f32x4Max), OP.localSet, ...uleb(sumLocal[k]!));
    },
  };
  spec.body(builder);
  const loads: Bytes = [];
  for (const k of usedInputs) {
    loads.push(OP.localGet, ...uleb(spec.outputs + k), OP.localGet, ...uleb(iLocal), OP.i32Add, ...simd(SIMD.load), 2, 0);
    loads.push(OP.localSet, ...uleb(inputLocal[k]!));
  }
  const splats: Bytes = [];
  for (let k = 0; k < spec.scalars; k++) {
    splats.push(OP.localGet, ...uleb(firstScalar + k), ...simd(SIMD.f32x4Splat), OP.localSet, ...uleb(scalarLocal[k]!));
  }
  // Sum accumulators start at zero (v128 locals are zero-initialised), max accumulators at -Infinity; all are
  // stored after the loop.
  const accInit: Bytes = [];
  for (const k of maxAccumulators)
    accInit.push(...v128Const(new Float32Array([-Infinity, -Infinity, -Infinity, -Infinity])), OP.localSet, ...uleb(sumLocal[k]!));
  const sumStores: Bytes = [];
  for (let k = 0; k < nSums; k++) {
    sumStores.push(OP.localGet, ...uleb(sumsParam), OP.localGet, ...uleb(sumLocal[k]!), ...simd(SIMD.store), 2, ...uleb(16 * k));
  }
  const expr: Bytes = [
    ...splats,
    ...accInit,
    OP.block,
    0x40,
    OP.localGet,
    ...uleb(lenParam),
    OP.i32Eqz,
    OP.brIf,
    0,
    OP.loop,
    0x40,
    ...loads,
    ...bodyCode,
    ...stores,
    OP.localGet,
    ...uleb(iLocal),
    OP.i32Const,
    ...sleb(16),
    OP.i32Add,
    OP.localTee,
    ...uleb(iLocal),
    OP.localGet,
    ...uleb(lenParam),
    OP.i32LtU,
    OP.brIf,
    0,
    OP.end,
    OP.end,
    ...sumStores,
    OP.end,
  ];
  const locals: Bytes[] = [
    [...uleb(1), I32],
    [...uleb(vLocals.length), V128],
  ];
  const fn = [...vec(locals), ...expr];
  const type = [0x60, ...vec(Array.from({ length: nParams }, (_, p) => [p <= lenParam ? I32 : F32])), ...vec([])];
  return { type, code: [...uleb(fn.length), ...fn] };
}

export interface FunctionEntry {
  type: Bytes;
  code: Bytes;
}

/** A module exporting the functions `k0`, `k1`, … and importing `env.memory` (shared or not). */
export function buildModule(fns: readonly FunctionEntry[], shared: boolean): Uint8Array<ArrayBuffer> {
  const memoryLimits = shared ? [0x03, ...uleb(0), ...uleb(65536)] : [0x00, ...uleb(0)];
  const bytes: Bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(fns.map((c) => c.type))),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, ...memoryLimits]])),
    ...section(3, vec(fns.map((_, i) => uleb(i)))),
    ...section(7, vec(fns.map((_, i) => [...name(`k${i}`), 0x00, ...uleb(i)]))),
    ...section(10, vec(fns.map((c) => c.code))),
  ];
  return new Uint8Array(bytes);
}

export type CompiledKernel = (...args: number[]) => void;

export function instantiate(fns: readonly FunctionEntry[], memory: WebAssembly.Memory): CompiledKernel[] | undefined {
  try {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const module = new WebAssembly.Module(buildModule(fns, shared));
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    return fns.map((_, i) => instance.exports[`k${i}`] as CompiledKernel);
  } catch {
    return undefined;
  }
}

/**
 * Instantiates `specs` against `memory`; undefined when this runtime cannot (no SIMD, or the memory cannot be
 * imported).
 */
export function instantiateKernels(specs: readonly ElementwiseSpec[], memory: WebAssembly.Memory): CompiledKernel[] | undefined {
  return instantiate(specs.map(compileElementwise), memory);
}

/** Lane sums of x² (one input, one 4-lane accumulator): Σ x² over the run, split into 4 partial sums. */
export const SUM_OF_SQUARES: ElementwiseSpec = {
  outputs: 0,
  inputs: 1,
  scalars: 0,
  sums: 1,
  body: (k) => k.sum(0, k.mul(k.input(0), k.input(0))),
};

/**
 * Runs element-wise kernel `spec` over `n` elements: the wasm kernel for the first multiple of 4, then `tail(from)`
 * in JavaScript for the rest. When every array is a view of `memory` (the wasm backend's heap, 4-byte aligned as
 * tfjs allocates) the kernel works on them where they are; otherwise (the cpu backend's own arrays) a chunk at a
 * time is copied into a private wasm memory, computed there and copied back, which is still several times faster
 * than the JavaScript loop. Just `tail(0)` when this runtime cannot compile the kernel.
 */
export function runElementwise(
  spec: ElementwiseSpec,
  memory: WebAssembly.Memory | undefined,
  outs: readonly Float32Array[],
  ins: readonly Float32Array[],
  scalars: readonly number[],
  n: number,
  tail: (from: number) => void,
): void {
  const n4 = n & ~3;
  if (n4 === 0) return tail(0);
  if (memory && [...outs, ...ins].every((a) => a.buffer === memory.buffer)) {
    const kernel = kernelFor(spec, memory);
    if (!kernel) return tail(0);
    kernel(...outs.map((a) => a.byteOffset), ...ins.map((a) => a.byteOffset), n4 * 4, ...scalars);
  } else if (!runStaged(spec, outs, ins, scalars, n4)) {
    return tail(0);
  }
  if (n4 < n) tail(n4);
}

/** Elements per array in one staged chunk: small enough that a chunk of every array stays in cache. */
export const STAGE_CHUNK = 1 << 14;
let stage: WebAssembly.Memory | undefined;

/**
 * A private wasm memory of at least `bytes`, for running these kernels on copies of arrays that live outside any
 * wasm heap (the cpu backend). One memory serves every caller, one at a time; it grows and never shrinks.
 */
function stagingMemory(bytes: number): WebAssembly.Memory {
  stage ??= new WebAssembly.Memory({ initial: 1 });
  if (stage.buffer.byteLength < bytes) stage.grow(Math.ceil((bytes - stage.buffer.byteLength) / 65536));
  return stage;
}

/**
 * Float32 views of the given lengths in the staging memory, each starting 2 KiB past a 4 KiB boundary. A large
 * ArrayBuffer's data starts 16 bytes past a page boundary; copying from a slot at a page boundary into one runs
 * into 4K aliasing (each load waits on the store 16 bytes behind it) and was 4× slower than from this offset.
 */
export function stagingSlots(lengths: readonly number[]): { memory: WebAssembly.Memory; slots: Float32Array[] } {
  const offsets: number[] = [];
  let end = 0;
  for (const length of lengths) {
    const at = Math.ceil(end / 4096) * 4096 + 2048;
    offsets.push(at);
    end = at + 4 * length;
  }
  const memory = stagingMemory(end);
  return { memory, slots: lengths.map((length, k) => new Float32Array(memory.buffer, offsets[k], length)) };
}

function runStaged(
  spec: ElementwiseSpec,
  outs: readonly Float32Array[],
  ins: readonly Float32Array[],
  scalars: readonly number[],
  n4: number,
): boolean {
  const { memory, slots } = stagingSlots(new Array<number>(outs.length + ins.length).fill(STAGE_CHUNK));
  const kernel = kernelFor(spec, memory);
  if (!kernel) return false;
  const outSlots = slots.slice(0, outs.length);
  const inSlots = slots.slice(outs.length);
  const offsets = slots.map((s) => s.byteOffset);
  for (let from = 0; from < n4; from += STAGE_CHUNK) {
    const len = Math.min(STAGE_CHUNK, n4 - from);
    // Every input is copied in before any output is copied back, so outputs may be inputs (updates in place).
    ins.forEach((a, i) => inSlots[i]!.set(a.subarray(from, from + len)));
    kernel(...offsets, len * 4, ...scalars);
    outs.forEach((a, j) => a.set(outSlots[j]!.subarray(0, len), from));
  }
  return true;
}

const compiled = new WeakMap<WebAssembly.Memory, Map<ElementwiseSpec, CompiledKernel | undefined>>();

/** `spec` compiled against `memory` (once per memory), or undefined when it cannot be. */
export function kernelFor(spec: ElementwiseSpec, memory: WebAssembly.Memory | undefined): CompiledKernel | undefined {
  if (!memory) return undefined;
  let byMemory = compiled.get(memory);
  if (!byMemory) compiled.set(memory, (byMemory = new Map()));
  if (!byMemory.has(spec)) byMemory.set(spec, instantiateKernels([spec], memory)?.[0]);
  return byMemory.get(spec);
}

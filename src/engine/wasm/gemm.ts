/**
 * A float32 matrix product in WebAssembly SIMD, generated at run time, for the wasm backend when ONNX Runtime is
 * not available. The stock kernel (XNNPACK) reaches about 45 GFLOP/s on two threads here (and its batched case, as in
 * attention, a naive loop at about 2); this register-blocked kernel reaches 32–36 per thread, and runs on two threads
 * when the heap is shared (threaded wasm build): the calling thread and one worker of ours, each on its half of the
 * batch, or of the output columns.
 *
 * C[m, n] = A[m, k] · B[k, n] with B first packed into panels of 16 columns (each panel k rows of 16 contiguous
 * floats), so the inner loop reads A as 4 broadcast scalars and B as 4 vectors and keeps a 4×16 block of C in 16
 * vector registers. Sums run over k in order, one multiply and one add per step (no fused multiply-add), as
 * float32.
 *
 * Encoding reference: the WebAssembly core specification (binary format) and its SIMD proposal opcodes.
 */
import { Worker } from 'node:worker_threads';

import { buildModule, sleb, uleb, vec, type Bytes, type FunctionEntry } from './simd.js';

const I32 = 0x7f;
const V128 = 0x7b;
const [BLOCK, LOOP, BR, BR_IF, END] = [0x02, 0x03, 0x0c, 0x0d, 0x0b];
const [LOCAL_GET, LOCAL_SET] = [0x20, 0x21];
const I32_CONST = 0x41;
const [I32_GE_U, I32_GT_U, I32_LT_U] = [0x4f, 0x4b, 0x49];
const [I32_ADD, I32_SUB, I32_MUL] = [0x6a, 0x6b, 0x6c];
const SIMD = 0xfd;
const [V128_LOAD, V128_LOAD32_SPLAT, V128_STORE, V128_CONST, F32X4_ADD, F32X4_MUL] = [0x00, 0x09, 0x0b, 0x0c, 0xe4, 0xe6];

const get = (l: number): Bytes => [LOCAL_GET, ...uleb(l)];
const set = (l: number): Bytes => [LOCAL_SET, ...uleb(l)];
const i32 = (v: number): Bytes => [I32_CONST, ...sleb(v)];
const simd = (op: number, ...imm: number[]): Bytes => [SIMD, ...uleb(op), ...imm];
const memarg = (align: number, offset: number): number[] => [...uleb(align), ...uleb(offset)];

/** Panel width of packed B (floats). */
export const GEMM_PANEL = 16;

/**
 * gemm(rows, k, a, lda, bp, c, ldc, p0, p1): for panels p0 ≤ p < p1, C[:, 16p … 16p+15] = A · panel p, where A
 * is `rows` rows of k floats starting at byte `a` with row stride `lda` bytes, panel p starts at byte
 * bp + 64·k·p, and row i of C starts at byte c + i·ldc. Requires k ≥ 1.
 */
function gemmFunction(): FunctionEntry {
  const [ROWS, K, A, LDA, BP, C, LDC, P0, P1] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [P, I, KK, PA, PB, PC, PANEL] = [9, 10, 11, 12, 13, 14, 15];
  const ACC = (r: number, c: number) => 16 + 4 * r + c;
  const AV = (r: number) => 32 + r;
  const BV = (c: number) => 36 + c;
  const zero = simd(V128_CONST, ...new Array(16).fill(0));

  /** The k loop of an r×16 block: acc[r][c] += A[i+r][kk] · panel[kk][c]. */
  const kLoop = (rowsInBlock: number): Bytes => {
    const body: Bytes = [];
    for (let r = 0; r < rowsInBlock; r++) {
      body.push(...get(PA));
      if (r > 0) body.push(...get(LDA), ...i32(r), I32_MUL, I32_ADD);
      body.push(...simd(V128_LOAD32_SPLAT, ...memarg(2, 0)), ...set(AV(r)));
    }
    for (let c = 0; c < 4; c++) body.push(...get(PB), ...simd(V128_LOAD, ...memarg(4, 16 * c)), ...set(BV(c)));
    for (let r = 0; r < rowsInBlock; r++) {
      for (let c = 0; c < 4; c++) {
        body.push(...get(AV(r)), ...get(BV(c)), ...simd(F32X4_MUL), ...get(ACC(r, c)), ...simd(F32X4_ADD), ...set(ACC(r, c)));
      }
    }
    return [
      ...Array.from({ length: rowsInBlock * 4 }, (_, j) => [...zero, ...set(ACC(Math.floor(j / 4), j % 4))]).flat(),
      ...get(A),
      ...get(I),
      ...get(LDA),
      I32_MUL,
      I32_ADD,
      ...set(PA),
      ...get(PANEL),
      ...set(PB),
      ...get(K),
      ...set(KK),
      LOOP,
      0x40,
      ...body,
      ...get(PA),
      ...i32(4),
      I32_ADD,
      ...set(PA),
      ...get(PB),
      ...i32(64),
      I32_ADD,
      ...set(PB),
      ...get(KK),
      ...i32(1),
      I32_SUB,
      ...set(KK),
      ...get(KK),
      BR_IF,
      0,
      END,
      // PC = C + I·LDC + 64·P
      ...get(C),
      ...get(I),
      ...get(LDC),
      I32_MUL,
      I32_ADD,
      ...get(P),
      ...i32(64),
      I32_MUL,
      I32_ADD,
      ...set(PC),
      ...Array.from({ length: rowsInBlock * 4 }, (_, j) => {
        const r = Math.floor(j / 4);
        const c = j % 4;
        const addr = r === 0 ? get(PC) : [...get(PC), ...get(LDC), ...i32(r), I32_MUL, I32_ADD];
        return [...addr, ...get(ACC(r, c)), ...simd(V128_STORE, ...memarg(4, 16 * c))];
      }).flat(),
    ];
  };

  const expr: Bytes = [
    ...get(P0),
    ...set(P),
    BLOCK,
    0x40,
    ...get(P),
    ...get(P1),
    I32_GE_U,
    BR_IF,
    0,
    LOOP,
    0x40,
    // PANEL = BP + P·K·64
    ...get(BP),
    ...get(P),
    ...get(K),
    I32_MUL,
    ...i32(6),
    0x74 /* i32.shl */,
    I32_ADD,
    ...set(PANEL),
    ...i32(0),
    ...set(I),
    BLOCK,
    0x40,
    LOOP,
    0x40,
    ...get(I),
    ...i32(4),
    I32_ADD,
    ...get(ROWS),
    I32_GT_U,
    BR_IF,
    1,
    ...kLoop(4),
    ...get(I),
    ...i32(4),
    I32_ADD,
    ...set(I),
    BR,
    0,
    END,
    END,
    BLOCK,
    0x40,
    LOOP,
    0x40,
    ...get(I),
    ...get(ROWS),
    I32_GE_U,
    BR_IF,
    1,
    ...kLoop(1),
    ...get(I),
    ...i32(1),
    I32_ADD,
    ...set(I),
    BR,
    0,
    END,
    END,
    ...get(P),
    ...i32(1),
    I32_ADD,
    ...set(P),
    ...get(P),
    ...get(P1),
    I32_LT_U,
    BR_IF,
    0,
    END,
    END,
    END,
  ];
  const locals: Bytes[] = [
    [...uleb(7), I32],
    [...uleb(24), V128],
  ];
  const fn = [...vec(locals), ...expr];
  return { type: [0x60, ...vec(Array.from({ length: 9 }, () => [I32])), ...vec([])], code: [...uleb(fn.length), ...fn] };
}

type GemmFn = (rows: number, k: number, a: number, lda: number, bp: number, c: number, ldc: number, p0: number, p1: number) => void;
type JobFields = [number, number, number, number, number, number, number, number, number, number, number, number, number, number];

/**
 * Runs `gemm` for items [b0, b1) of a batch (byte strides aStride, bpStride, cStride between items) over blocks of
 * rows, so that a block of A (about 128 KB) stays in cache while every panel of B in [p0, p1) passes over it.
 * Job layout: rows, k, a, lda, bp, c, ldc, p0, p1, b0, b1, aStride, bpStride, cStride (byte offsets and strides).
 * Plain JavaScript with no free names: the worker gets its source text.
 */
function runJob(gemm: GemmFn, job: ArrayLike<number>): void {
  const [rows, k, a, lda, bp, c, ldc, p0, p1, b0, b1, aStride, bpStride, cStride] = Array.from(job, (v) => v >>> 0) as JobFields;
  const block = Math.max(16, Math.min(512, Math.floor(8192 / k) * 4));
  for (let b = b0; b < b1; b++) {
    for (let i = 0; i < rows; i += block) {
      gemm(Math.min(block, rows - i), k, a + b * aStride + i * lda, lda, bp + b * bpStride, c + b * cStride + i * ldc, ldc, p0, p1);
    }
  }
}

/** How long the calling thread waits for the worker's half of one product before giving up on the worker. */
const WORKER_TIMEOUT_MS = 300_000;

/** Control block: [0] job number, [1] job done, [2, 16) the worker's job, [16] failed, [17] worker ready. */
const CONTROL_INTS = 18;

/** The worker's side: waits for jobs in the control block, runs its share, signals done. */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const runJob = ${runJob.toString()};
const { module, memory, control } = workerData;
const gemm = new WebAssembly.Instance(module, { env: { memory } }).exports.k0;
const ctl = new Int32Array(control);
let seen = 0;
let idleSince = Date.now();
Atomics.store(ctl, 17, 1);
for (;;) {
  // Short timed waits while products are coming in, longer ones when idle; a notify alone is not relied on.
  Atomics.wait(ctl, 0, seen, Date.now() - idleSince < 500 ? 1 : 20);
  const job = Atomics.load(ctl, 0);
  if (job < 0) break;
  if (job === seen) continue;
  seen = job;
  let failed = 0;
  try {
    runJob(gemm, ctl.subarray(2, 16));
  } catch (e) {
    failed = 1;
  }
  Atomics.store(ctl, 16, failed);
  Atomics.store(ctl, 1, seen);
  Atomics.notify(ctl, 1);
  idleSince = Date.now();
}
`;

/** A batch of products C_b = A_b · B_b, B_b packed by `packB`; offsets in bytes, strides in floats. */
export interface GemmBatch {
  batch: number;
  rows: number;
  k: number;
  /** A_0 (rows × k, row stride `lda`), then A_b every `aStride` floats. */
  a: number;
  lda: number;
  aStride: number;
  /** Packed B_0 (`panels` panels), then B_b every `bpStride` floats. */
  bp: number;
  panels: number;
  bpStride: number;
  /** C_0 (rows × 16·panels, row stride `ldc`), then C_b every `cStride` floats. */
  c: number;
  ldc: number;
  cStride: number;
}

export interface WasmGemm {
  /** Threads a product runs on (1, or 2 with a worker). */
  readonly threads: number;
  /** Products computed so far. */
  readonly calls: number;
  run(job: GemmBatch): void;
  dispose(): void;
}

class WasmGemmImpl implements WasmGemm {
  calls = 0;
  private readonly control: Int32Array | undefined;
  private seq = 0;

  constructor(
    private readonly gemm: GemmFn,
    private readonly worker: Worker | undefined,
    control: SharedArrayBuffer | undefined,
  ) {
    this.control = control ? new Int32Array(control) : undefined;
  }

  get threads(): number {
    return this.worker ? 2 : 1;
  }

  run(j: GemmBatch): void {
    this.calls++;
    const ctl = this.control;
    const job = (p0: number, p1: number, b0: number, b1: number) => [
      j.rows,
      j.k,
      j.a,
      4 * j.lda,
      j.bp,
      j.c,
      4 * j.ldc,
      p0,
      p1,
      b0,
      b1,
      4 * j.aStride,
      4 * j.bpStride,
      4 * j.cStride,
    ];
    // Until the worker has started (or if it could not), the calling thread does all of it.
    if (!ctl || (j.panels < 2 && j.batch < 2) || Atomics.load(ctl, 17) !== 1) {
      runJob(this.gemm, job(0, j.panels, 0, j.batch));
      return;
    }
    // Two halves: of the batch when there is one, else of the panels.
    const [mine, theirs] =
      j.batch >= 2
        ? [job(0, j.panels, 0, j.batch >> 1), job(0, j.panels, j.batch >> 1, j.batch)]
        : [job(0, j.panels >> 1, 0, 1), job(j.panels >> 1, j.panels, 0, 1)];
    ctl.set(
      theirs.map((v) => v | 0),
      2,
    );
    this.seq = (this.seq % 0x3fffffff) + 1;
    Atomics.store(ctl, 0, this.seq);
    Atomics.notify(ctl, 0);
    try {
      runJob(this.gemm, mine);
    } finally {
      // The worker usually finishes within a millisecond of this thread: poll, then wait in short steps (a
      // notify from the worker is not relied on). A worker that has died would otherwise block this thread forever.
      const since = Date.now();
      for (let spins = 0; Atomics.load(ctl, 1) !== this.seq; spins++) {
        if (spins > 20000) Atomics.wait(ctl, 1, Atomics.load(ctl, 1), 1);
        if (spins % 1024 === 0 && Date.now() - since > WORKER_TIMEOUT_MS) {
          Atomics.store(ctl, 17, 2);
          throw new Error(`the matmul worker gave no answer in ${WORKER_TIMEOUT_MS / 1000} s`);
        }
      }
    }
    if (ctl[16] !== 0) throw new Error('the matmul worker failed');
  }

  dispose(): void {
    if (this.control && this.worker) {
      Atomics.store(this.control, 17, 2);
      Atomics.store(this.control, 0, -1);
      Atomics.notify(this.control, 0);
      void this.worker.terminate();
    }
  }
}

const instances = new WeakMap<WebAssembly.Memory, WasmGemm | undefined>();

/**
 * The product compiled against `memory` (once per memory), with a worker thread when the memory is shared and
 * `threads` ≥ 2; undefined when this runtime cannot compile it.
 */
export function wasmGemmFor(memory: WebAssembly.Memory, threads: number): WasmGemm | undefined {
  if (instances.has(memory)) return instances.get(memory);
  let result: WasmGemm | undefined;
  try {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const module = new WebAssembly.Module(buildModule([gemmFunction()], shared));
    const gemm = new WebAssembly.Instance(module, { env: { memory } }).exports['k0'] as GemmFn;
    let worker: Worker | undefined;
    let control: SharedArrayBuffer | undefined;
    if (shared && threads >= 2) {
      control = new SharedArrayBuffer(CONTROL_INTS * 4);
      const ctl = new Int32Array(control);
      worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, control } });
      worker.on('error', () => Atomics.store(ctl, 17, 2));
      worker.unref();
    }
    result = new WasmGemmImpl(gemm, worker, control);
  } catch {
    result = undefined;
  }
  instances.set(memory, result);
  return result;
}

/** Stops the worker of the product compiled against `memory` (its wasm backend is being replaced). */
export function disposeWasmGemm(memory: WebAssembly.Memory): void {
  instances.get(memory)?.dispose();
  instances.delete(memory);
}

/**
 * Packs op(B) ([k, n]) into `out` (k · 16·ceil(n/16) floats) as ceil(n/16) panels of k rows × 16 columns, the
 * columns past n zero. `b` holds B row-major: [k, n], or [n, k] when `transposed`.
 */
export function packB(b: Float32Array, k: number, n: number, transposed: boolean, out: Float32Array): void {
  const panels = Math.ceil(n / GEMM_PANEL);
  for (let p = 0; p < panels; p++) {
    const base = p * k * GEMM_PANEL;
    const width = Math.min(GEMM_PANEL, n - p * GEMM_PANEL);
    if (width < GEMM_PANEL) out.fill(0, base, base + k * GEMM_PANEL);
    if (transposed) {
      for (let c = 0; c < width; c++) {
        const src = (p * GEMM_PANEL + c) * k;
        for (let kk = 0; kk < k; kk++) out[base + kk * GEMM_PANEL + c] = b[src + kk]!;
      }
    } else {
      for (let kk = 0; kk < k; kk++) {
        const src = kk * n + p * GEMM_PANEL;
        const dst = base + kk * GEMM_PANEL;
        for (let c = 0; c < width; c++) out[dst + c] = b[src + c]!;
      }
    }
  }
}

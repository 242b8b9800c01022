/**
 * Matrix products through ONNX Runtime's CPU kernels (MLAS), loaded from the optional `onnxruntime-node` package.
 *
 * The package's native binding runs a session synchronously, which is what a tfjs kernel needs; its public
 * `InferenceSession.run` only wraps that call in a promise. One session per (transposeA, transposeB) serves every
 * shape (see onnx/builder.ts). Outputs are written straight into a buffer the caller owns.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';

import { ORT_PATH_ENV } from '../flags.js';
import { matMulModel } from '../onnx/builder.js';
import { checkProducts, type MatrixProducts } from '../products.js';
import { loadFailureReason, readPackageJson, resolvePackageDir } from '../optional_packages.js';

export const ORT_PACKAGE = 'onnxruntime-node';

interface OrtTensorLike {
  readonly dims: readonly number[];
}
type OrtTensorCtor = new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensorLike;

interface BindingSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, OrtTensorLike>, fetches: Record<string, OrtTensorLike | null>, options: object): unknown;
  dispose(): void;
}
interface BindingModule {
  binding: { InferenceSession: new () => BindingSession };
  initOrt(): void;
}

export interface OrtMatMul extends MatrixProducts {
  /** onnxruntime-node version, e.g. "1.30.0". */
  readonly version: string;
  readonly packageDir: string;
  /** Intra-op threads of each session. */
  readonly threads: number;
  /**
   * Runs the model `build()` returns (built and loaded once per `key`) on float32 feeds, writing its outputs into
   * the caller's buffers (each of exactly its output's size). Same buffer rules as `matMul`.
   */
  runGraph(key: string, build: () => Uint8Array, feeds: Record<string, OrtBuffer>, outputs: Record<string, OrtBuffer>): void;
  dispose(): void;
}

export interface OrtBuffer {
  data: Float32Array;
  dims: readonly number[];
}

export type OrtLoadResult = { ok: true; ort: OrtMatMul } | { ok: false; reason: string; installed: boolean };

/** Folders to look in for onnxruntime-node besides t5cls's own node_modules. */
export function ortSearchPaths(extra: readonly string[] = []): string[] {
  const env = process.env[ORT_PATH_ENV];
  return [...extra, ...(env ? env.split(path.delimiter).filter((p) => p !== '') : [])];
}

const loaded = new Map<string, OrtLoadResult>();

/** Loads onnxruntime-node once per (threads, search paths); failures are returned, never thrown. */
export function loadOrtMatMul(threads: number, extraPaths: readonly string[] = []): OrtLoadResult {
  const paths = ortSearchPaths(extraPaths);
  const key = `${threads}|${paths.join(path.delimiter)}`;
  let result = loaded.get(key);
  if (!result) {
    result = load(threads, paths);
    loaded.set(key, result);
  }
  return result;
}

function load(threads: number, paths: string[]): OrtLoadResult {
  const dir = resolvePackageDir(ORT_PACKAGE, paths);
  if (!dir) {
    return {
      ok: false,
      installed: false,
      reason: `${ORT_PACKAGE} is not installed${paths.length ? ` (also looked in ${paths.join(', ')})` : ''}`,
    };
  }
  const version = readPackageJson(dir)?.version ?? 'unknown';
  try {
    const req = createRequire(path.join(dir, 'package.json'));
    const bindingModule = req('./dist/binding.js') as BindingModule;
    const common = req('onnxruntime-common') as { Tensor: OrtTensorCtor };
    bindingModule.initOrt();
    const ort = new OrtMatMulImpl(bindingModule, common.Tensor, version, dir, threads);
    // Fails here, not in the middle of training, if this build cannot run the models.
    checkProducts(ort);
    return { ok: true, ort };
  } catch (e) {
    return { ok: false, installed: true, reason: `${ORT_PACKAGE} ${version} failed to load: ${loadFailureReason(e)}` };
  }
}

class OrtMatMulImpl implements OrtMatMul {
  private readonly sessions = new Map<string, BindingSession>();
  // The binding rejects views of a SharedArrayBuffer.
  readonly acceptsShared = false;
  calls = 0;

  constructor(
    private readonly mod: BindingModule,
    private readonly Tensor: OrtTensorCtor,
    readonly version: string,
    readonly packageDir: string,
    readonly threads: number,
  ) {}

  private load(key: string, build: () => Uint8Array, arena: boolean): BindingSession {
    let s = this.sessions.get(key);
    if (!s) {
      s = new this.mod.binding.InferenceSession();
      const model = build();
      s.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, {
        intraOpNumThreads: this.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        executionProviders: ['cpu'],
        // A single product writes straight into a caller-owned buffer: an arena would only keep scratch memory
        // alive. Larger graphs have large intermediates, which an arena saves from fresh (page-faulting) memory
        // on every run.
        enableCpuMemArena: arena,
        // Idle ORT threads must not spin: between two runs the CPU belongs to the other kernels.
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
      this.sessions.set(key, s);
    }
    return s;
  }

  private session(transposeA: boolean, transposeB: boolean): BindingSession {
    return this.load(`matmul/${transposeA ? 'T' : 'N'}${transposeB ? 'T' : 'N'}float32`, () => matMulModel(transposeA, transposeB), false);
  }

  runGraph(key: string, build: () => Uint8Array, feeds: Record<string, OrtBuffer>, outputs: Record<string, OrtBuffer>): void {
    const T = this.Tensor;
    const wrap = (buffers: Record<string, OrtBuffer>) => {
      const out: Record<string, OrtTensorLike> = {};
      for (const [name, b] of Object.entries(buffers)) out[name] = new T('float32', b.data, b.dims);
      return out;
    };
    this.load(`graph/${key}`, build, true).run(wrap(feeds), wrap(outputs), {});
  }

  matMul(
    a: Float32Array,
    aShape: readonly number[],
    b: Float32Array,
    bShape: readonly number[],
    transposeA: boolean,
    transposeB: boolean,
    out: Float32Array,
    outShape: readonly number[],
  ): void {
    const T = this.Tensor;
    this.calls++;
    this.session(transposeA, transposeB).run(
      { A: new T('float32', a, aShape), B: new T('float32', b, bShape) },
      { Y: new T('float32', out, outShape) },
      {},
    );
  }

  dispose(): void {
    for (const s of this.sessions.values()) s.dispose();
    this.sessions.clear();
  }
}

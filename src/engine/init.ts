/**
 * Choosing and starting the TensorFlow.js backend.
 *
 * auto: `@tensorflow/tfjs-node-gpu` when installed and loadable, else `@tensorflow/tfjs-node`, else wasm with our
 * kernels (UnsortedSegmentSum, zero-copy Identity, fast transposed matmul) when the job's tensors fit its heap, else
 * the cpu engine (tfjs's cpu backend with the kernels of engine/cpu). On wasm and cpu, matrix products go to native
 * code: the system's OpenBLAS (through the optional `koffi` package) for large products, ONNX Runtime's kernels (the
 * optional `onnxruntime-node` package) for batches of small ones and wherever there is no OpenBLAS (env
 * T5CLS_NATIVE_MATMUL=0 turns both off, T5CLS_BLAS=0 the BLAS); see kernels/matmul.ts and products.ts.
 */
import * as os from 'node:os';

import { T5clsError, UsageError } from '../errors.js';
import { tf } from '../tf.js';
import { blasInstallHint, blasWanted, KOFFI_PACKAGE, loadBlasMatMul, type BlasMatMul } from './blas/runtime.js';
import { BLAS_ENV, NATIVE_MATMUL_ENV, ORT_PATH_ENV } from './flags.js';
import { registerCpuEngine } from './cpu/register_all_kernels.js';
import { registerWasmKernels } from './wasm/register_all_kernels.js';
import { installLeanGradients } from './kernels/lean_gradients.js';
import { loadOrtMatMul, ORT_PACKAGE, type OrtLoadResult, type OrtMatMul } from './ort/runtime.js';
import { routeProducts, type MatrixProducts } from './products.js';
import {
  CUDA_REQUIREMENT,
  loadTfjsNode,
  tensorflowUsesGpu,
  TFJS_NODE,
  TFJS_NODE_GPU,
  type TfjsNodeLoad,
  type TfjsNodePackage,
} from './tensorflow/tfjs_node.js';
import { activateWasm, wasmPackageVersion, wasmSupport, WASM_MAX_THREADS, WASM_TENSOR_BYTES, type WasmBuild } from './wasm/activate.js';

export type BackendChoice = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
export type DeviceChoice = 'auto' | 'cuda' | 'cpu';

export interface InitBackendOptions {
  /** CPU threads for wasm and the native matmul (default: os.availableParallelism()). */
  threads?: number;
  device?: DeviceChoice;
  /** Receives one line naming the backend chosen (and why others were not). */
  log?: (line: string) => void;
  /** Native matmul through a system BLAS or onnxruntime-node (default: on unless T5CLS_NATIVE_MATMUL=0). */
  nativeMatmul?: boolean;
  /**
   * Large matrix products through the system BLAS (OpenBLAS, or the CBLAS that T5CLS_BLAS names) when it loads
   * (default: on unless T5CLS_BLAS=0); products stay in ONNX Runtime without it.
   */
  blas?: boolean;
  /**
   * wasm build. Default: `simd` when the native matmul is in use (matmul is the only wasm kernel that threads
   * speed up, and the native binding reads the single-threaded build's memory without copies), otherwise
   * `threaded-simd`.
   */
  wasmBuild?: WasmBuild;
  /** Extra folders to find the optional native packages in, besides t5cls's own node_modules. */
  modulePaths?: string[];
  /**
   * Bytes the job's tensors need at their peak (`estimateMemory(...).tensorBytes`). `auto` leaves wasm out when its
   * heap cannot hold them and takes the cpu engine, whose tensors have no such ceiling; `--backend wasm` refuses.
   */
  tensorBytes?: number;
}

export interface BackendInfo {
  /** The tfjs backend in use. */
  name: 'tensorflow' | 'wasm' | 'cpu';
  /** One line, e.g. "wasm (SIMD build) + ONNX Runtime 1.30.0 matmul, 2 threads". */
  description: string;
  /** Threads the heavy kernels use (native matmul or wasm pool; TensorFlow's own pool for tensorflow). */
  threads: number;
  /** True when matrix products run in native code (TensorFlow or ONNX Runtime). */
  nativeMatmul: boolean;
  /** Where matrix products run ('blas': a system BLAS for the large ones, ONNX Runtime for batches of small ones). */
  matmul: 'tensorflow' | 'blas' | 'onnxruntime' | 'wasm' | 'js';
  /** The BLAS library in use, e.g. "OpenBLAS 0.3.21 (Zen)". */
  blas?: string;
  device: 'cuda' | 'cpu';
  /** The wasm build when name is 'wasm'. */
  wasmBuild?: WasmBuild;
  /** Package versions in use beyond @tensorflow/tfjs, e.g. { 'onnxruntime-node': '1.30.0' }. */
  packages: Record<string, string>;
  /** Kernels of ours registered on the backend in place of tfjs's. */
  kernels: string[];
  /**
   * Further kernels of ours on this backend: fused T5 kernels (no tfjs counterpart), and tfjs kernels replaced only
   * to skip copies.
   */
  fusedKernels: string[];
  /** Why better-ranked candidates were not used. */
  skipped: string[];
}

export interface BackendProbe {
  name: 'tensorflow-gpu' | 'tensorflow' | 'blas' | 'onnxruntime' | 'wasm' | 'cpu';
  package: string;
  version?: string;
  installed: boolean;
  available: boolean;
  /** What loads and how, or why not. */
  detail: string;
}

function nativeMatmulWanted(opt: boolean | undefined): boolean {
  if (opt !== undefined) return opt;
  return process.env[NATIVE_MATMUL_ENV] !== '0';
}

const gb = (bytes: number) => `${(bytes / 1e9).toFixed(1)} GB`;

function defaultThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

function cudaError(reason: string): T5clsError {
  return new T5clsError(`--device cuda needs ${TFJS_NODE_GPU}@${tf.version_core} (which needs ${CUDA_REQUIREMENT}): ${reason}`);
}

export async function initBackend(choice: BackendChoice = 'auto', opts: InitBackendOptions = {}): Promise<BackendInfo> {
  const device = opts.device ?? 'auto';
  const threads = opts.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) {
    throw new UsageError(`--threads: expected a whole number >= 1, got ${threads}`);
  }
  if (device === 'cuda' && (choice === 'wasm' || choice === 'cpu')) {
    throw new UsageError(`--device cuda runs only on the tensorflow backend (${TFJS_NODE_GPU}), not on --backend ${choice}`);
  }
  const log = opts.log ?? (() => {});
  const skipped: string[] = [];
  // Frees intermediate gradients during the backward pass (any backend); see kernels/lean_gradients.ts.
  installLeanGradients();
  let info: BackendInfo | undefined;

  if (choice === 'auto' || choice === 'tensorflow') {
    info = await tryTensorflow(device, threads, opts.modulePaths ?? [], skipped, opts.threads !== undefined);
    if (!info) {
      if (device === 'cuda') throw cudaError(skipped.join('; '));
      if (choice === 'tensorflow') {
        throw new T5clsError(
          `--backend tensorflow needs ${TFJS_NODE_GPU} or ${TFJS_NODE} (version ${tf.version_core}): ${skipped.join('; ')}`,
        );
      }
    }
  }
  const wasmTooSmall = opts.tensorBytes !== undefined && opts.tensorBytes > WASM_TENSOR_BYTES;
  if (choice === 'wasm' && wasmTooSmall) {
    throw new UsageError(
      `--backend wasm cannot hold this job: its tensors need about ${gb(opts.tensorBytes!)} and the wasm heap holds ` +
        `${gb(WASM_TENSOR_BYTES)} of tensors at most (4 GiB in all); use --backend auto or cpu`,
    );
  }
  if (!info && choice === 'auto' && wasmTooSmall) {
    skipped.push(`wasm left out: the job's tensors need about ${gb(opts.tensorBytes!)}, more than its heap holds`);
  } else if (!info && (choice === 'auto' || choice === 'wasm')) {
    try {
      info = await startEmbedded('wasm', threads, opts, skipped);
    } catch (e) {
      if (choice === 'wasm') throw new T5clsError(`the wasm backend failed to start: ${(e as Error).message}`, 1, { cause: e });
      skipped.push(`wasm failed: ${(e as Error).message}`);
    }
  }
  if (!info) info = await startEmbedded('cpu', threads, opts, skipped);

  log(`backend: ${info.description}${skipped.length ? ` (${skipped.join('; ')})` : ''}`);
  return info;
}

async function tryTensorflow(
  device: DeviceChoice,
  threads: number,
  modulePaths: string[],
  skipped: string[],
  threadsGiven: boolean,
): Promise<BackendInfo | undefined> {
  const candidates: TfjsNodePackage[] = device === 'cpu' ? [TFJS_NODE] : device === 'cuda' ? [TFJS_NODE_GPU] : [TFJS_NODE_GPU, TFJS_NODE];
  // TensorFlow reads its pool size when its context is created, i.e. at the first op.
  if (threadsGiven && process.env['TF_NUM_INTRAOP_THREADS'] === undefined) {
    process.env['TF_NUM_INTRAOP_THREADS'] = String(threads);
  }
  for (const pkg of candidates) {
    const res = await loadTfjsNode(pkg, modulePaths);
    if (!res.ok) {
      skipped.push(res.reason);
      continue;
    }
    if (!(await tf.setBackend('tensorflow'))) {
      skipped.push(`${pkg} ${res.version} loaded but its backend failed to initialize`);
      continue;
    }
    const gpu = pkg === TFJS_NODE_GPU ? tensorflowUsesGpu() : false;
    if (device === 'cuda' && gpu === false) {
      throw cudaError(`${pkg} ${res.version} loaded but TensorFlow sees no usable GPU (check the NVIDIA driver and CUDA_VISIBLE_DEVICES)`);
    }
    const onGpu = gpu !== false && pkg === TFJS_NODE_GPU;
    const tfThreads = Number(process.env['TF_NUM_INTRAOP_THREADS'] ?? '') || defaultThreads();
    return {
      name: 'tensorflow',
      description:
        `tensorflow (${pkg} ${res.version}, ${onGpu ? 'CUDA GPU' : `CPU${pkg === TFJS_NODE_GPU ? ': no GPU visible' : ''}`}` +
        `, ${tfThreads} thread${tfThreads === 1 ? '' : 's'})`,
      threads: tfThreads,
      nativeMatmul: true,
      matmul: 'tensorflow',
      device: onGpu ? 'cuda' : 'cpu',
      packages: { [pkg]: res.version },
      kernels: [],
      fusedKernels: [],
      skipped: [...skipped],
    };
  }
  return undefined;
}

async function startEmbedded(name: 'wasm' | 'cpu', threads: number, opts: InitBackendOptions, skipped: string[]): Promise<BackendInfo> {
  let ort: OrtMatMul | undefined;
  let blas: BlasMatMul | undefined;
  const packages: Record<string, string> = {};
  if (nativeMatmulWanted(opts.nativeMatmul)) {
    const res: OrtLoadResult = loadOrtMatMul(threads, opts.modulePaths ?? []);
    if (res.ok) {
      ort = res.ort;
      packages[ORT_PACKAGE] = ort.version;
    } else {
      skipped.push(`native matmul off: ${res.reason}`);
    }
    const wanted = opts.blas === false ? 'off' : blasWanted();
    if (wanted === 'off') {
      skipped.push(`BLAS off (${opts.blas === false ? 'blas: false' : `${BLAS_ENV}=0`})`);
    } else {
      const loaded = loadBlasMatMul(threads, wanted);
      if (loaded.ok) {
        blas = loaded.blas;
        packages[KOFFI_PACKAGE] = blas.koffiVersion;
      } else {
        skipped.push(`BLAS off: ${loaded.reason}`);
      }
    }
  } else {
    skipped.push(`native matmul off (${opts.nativeMatmul === false ? 'nativeMatmul: false' : `${NATIVE_MATMUL_ENV}=0`})`);
  }
  const products: MatrixProducts | undefined = blas && ort ? routeProducts(blas, ort) : (blas ?? ort);

  let wasmBuild: WasmBuild | undefined;
  let poolThreads = 1;
  if (name === 'wasm') {
    const support = wasmSupport();
    let build: WasmBuild = opts.wasmBuild ?? (products ? 'simd' : 'threaded-simd');
    if (build === 'threaded-simd' && !(support.threads && support.simd)) build = 'simd';
    if (build === 'simd' && !support.simd) build = 'plain';
    const started = await activateWasm(build, threads);
    wasmBuild = started.build;
    poolThreads = started.threads;
  } else if (!(await tf.setBackend('cpu'))) {
    throw new T5clsError('the cpu backend failed to initialize');
  }

  const libs = { products, ort, poolThreads };
  const { kernels, fusedKernels } = name === 'wasm' ? registerWasmKernels(libs) : registerCpuEngine(libs);

  if (name === 'wasm') {
    const problem = wasmSelfCheck();
    if (problem) throw new Error(`self-check failed: ${problem}`);
  }

  const matmul: BackendInfo['matmul'] = blas ? 'blas' : ort ? 'onnxruntime' : name === 'wasm' ? 'wasm' : 'js';
  const buildText = wasmBuild === 'threaded-simd' ? 'threaded SIMD build' : wasmBuild === 'simd' ? 'SIMD build' : 'plain build';
  const engineText =
    name === 'wasm' ? `wasm (${buildText}${products ? '' : `, ${poolThreads} thread${poolThreads === 1 ? '' : 's'}`})` : 'cpu (JavaScript)';
  const libraries = [...(blas ? [blas.name] : []), ...(ort ? [`ONNX Runtime ${ort.version}`] : [])].join(' and ');
  const nativeThreads = blas?.threads ?? ort?.threads ?? poolThreads;
  const description = products
    ? `${engineText} + ${libraries} matmul, ${nativeThreads} thread${nativeThreads === 1 ? '' : 's'}`
    : `${engineText}, ${name === 'wasm' ? 'wasm' : 'JavaScript'} matmul`;
  return {
    name,
    description,
    threads: nativeThreads,
    nativeMatmul: products !== undefined,
    matmul,
    ...(blas ? { blas: blas.name } : {}),
    device: 'cpu',
    ...(wasmBuild ? { wasmBuild } : {}),
    packages,
    kernels,
    fusedKernels,
    skipped: [...skipped],
  };
}

/**
 * A small forward and backward pass through the kernels training leans on, checked against values computed by
 * hand; returns what went wrong, or undefined.
 */
function wasmSelfCheck(): string | undefined {
  try {
    return tf.tidy(() => {
      // y = sum(gather(W, [0, 0, 2]) · M); dy/dW row r = (times r is gathered) · (row sums of M).
      const w = tf.tensor2d([
        [1, 2],
        [3, 4],
        [5, 6],
      ]);
      const m = tf.tensor2d([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      const ids = tf.tensor1d([0, 0, 2], 'int32');
      const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => tf.sum(tf.matMul(tf.gather(x, ids), m)))(w);
      const y = value.dataSync()[0];
      const g = Array.from(grad.dataSync());
      // Rows [1,2], [1,2], [5,6] times M sum to 36, 36 and 120.
      if (y !== 192) return `forward gave ${y}, expected 192`;
      const want = [12, 30, 0, 0, 6, 15];
      if (g.some((v, i) => v !== want[i])) return `gradient gave [${g.join(', ')}], expected [${want.join(', ')}]`;
      return undefined;
    });
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Which backends this machine can run and why not, for `t5cls doctor`. Importing tfjs-node(-gpu) loads its
 * native library; nothing else changes the backend in use.
 */
export async function describeBackends(opts: { threads?: number; modulePaths?: string[] } = {}): Promise<BackendProbe[]> {
  const probes: BackendProbe[] = [];
  const modulePaths = opts.modulePaths ?? [];

  const gpu = await loadTfjsNode(TFJS_NODE_GPU, modulePaths);
  probes.push(tensorflowProbe('tensorflow-gpu', gpu));
  if (gpu.ok) {
    probes.push({
      name: 'tensorflow',
      package: TFJS_NODE,
      installed: false,
      available: false,
      detail: `not loaded: ${TFJS_NODE_GPU} already provides the tensorflow backend`,
    });
  } else {
    probes.push(tensorflowProbe('tensorflow', await loadTfjsNode(TFJS_NODE, modulePaths)));
  }

  const threads = opts.threads ?? defaultThreads();
  probes.push(blasProbe(threads));
  const ort = loadOrtMatMul(threads, modulePaths);
  const disabled = process.env[NATIVE_MATMUL_ENV] === '0';
  probes.push(
    ort.ok
      ? {
          name: 'onnxruntime',
          package: ORT_PACKAGE,
          version: ort.ort.version,
          installed: true,
          available: !disabled,
          detail: disabled
            ? `loads from ${ort.ort.packageDir}, but ${NATIVE_MATMUL_ENV}=0 turns the native matmul off`
            : `native matmul and inference graphs for wasm and cpu (${ort.ort.packageDir})`,
        }
      : {
          name: 'onnxruntime',
          package: ORT_PACKAGE,
          installed: ort.installed,
          available: false,
          detail:
            `${ort.reason}; wasm and cpu use their own matmul` +
            (ort.installed
              ? ''
              : ` (npm install ${ORT_PACKAGE} --onnxruntime-node-install=skip, or point ${ORT_PATH_ENV} at a folder holding it)`),
        },
  );

  const support = wasmSupport();
  const wasmVersion = wasmPackageVersion();
  probes.push({
    name: 'wasm',
    package: '@tensorflow/tfjs-backend-wasm',
    ...(wasmVersion ? { version: wasmVersion } : {}),
    installed: true,
    available: true,
    detail: support.simd
      ? support.threads
        ? `SIMD and threads supported (threaded build: up to ${WASM_MAX_THREADS} threads)`
        : 'SIMD supported, threads not (SharedArrayBuffer or wasm atomics missing)'
      : 'no wasm SIMD in this runtime: the plain build runs, slower',
  });
  probes.push({
    name: 'cpu',
    package: '@tensorflow/tfjs-backend-cpu',
    version: tf.version_core,
    installed: true,
    available: true,
    detail: 'pure JavaScript, single thread: slowest',
  });
  return probes;
}

function blasProbe(threads: number): BackendProbe {
  const wanted = blasWanted();
  const loaded = wanted === 'off' ? undefined : loadBlasMatMul(threads, wanted);
  const base = { name: 'blas' as const, package: KOFFI_PACKAGE };
  if (loaded?.ok) {
    return {
      ...base,
      version: loaded.blas.koffiVersion,
      installed: true,
      available: true,
      detail: `${loaded.blas.name} (${loaded.blas.library}): large matrix products for wasm and cpu`,
    };
  }
  if (!loaded) return { ...base, installed: true, available: false, detail: `${BLAS_ENV}=0 keeps matrix products off the BLAS` };
  const hint = wanted ? '' : `; products stay in ONNX Runtime, up to 1.5x slower (${blasInstallHint()})`;
  return { ...base, installed: loaded.installed, available: false, detail: `${loaded.reason}${hint}` };
}

function tensorflowProbe(name: 'tensorflow-gpu' | 'tensorflow', res: TfjsNodeLoad): BackendProbe {
  if (!res.ok) {
    const hint = name === 'tensorflow-gpu' ? ` (needs ${CUDA_REQUIREMENT})` : '';
    return {
      name,
      package: res.pkg,
      ...(res.version ? { version: res.version } : {}),
      installed: res.installed,
      available: false,
      detail: `${res.reason}${res.installed ? hint : ''}`,
    };
  }
  let detail = 'loads';
  if (name === 'tensorflow-gpu') {
    const backend = tf.findBackend('tensorflow');
    const gpu = backend ? tensorflowUsesGpu() : undefined;
    detail =
      gpu === true
        ? 'loads; TensorFlow uses a CUDA GPU'
        : gpu === false
          ? 'loads, but TensorFlow sees no usable GPU: it would run on the CPU'
          : 'loads';
  }
  return { name, package: res.pkg, version: res.version, installed: true, available: true, detail };
}

/** `t5cls doctor`'s look at the backends: which this machine can run, and why not. */
import { tf } from '../tf.js';
import { blasInstallHint, blasWanted, KOFFI_PACKAGE, loadBlasMatMul } from './blas/runtime.js';
import { BLAS_ENV, NATIVE_MATMUL_ENV, ORT_PATH_ENV } from './flags.js';
import { loadOrtMatMul, ORT_PACKAGE } from './ort/runtime.js';
import { CUDA_REQUIREMENT, loadTfjsNode, tensorflowUsesGpu, TFJS_NODE, TFJS_NODE_GPU, type TfjsNodeLoad } from './tensorflow/tfjs_node.js';
import { wasmPackageVersion, wasmSupport, WASM_MAX_THREADS } from './wasm/activate.js';
import { defaultThreads } from './backend_policy.js';
import { useProductionMode } from './production_mode.js';

export interface BackendProbe {
  name: 'tensorflow-gpu' | 'tensorflow' | 'blas' | 'onnxruntime' | 'wasm' | 'cpu';
  package: string;
  version?: string;
  installed: boolean;
  available: boolean;
  /** What loads and how, or why not. */
  detail: string;
}

/**
 * Which backends this machine can run and why not, for `t5cls doctor`. Importing tfjs-node(-gpu) loads its
 * native library; nothing else changes the backend in use. Puts tfjs in production mode, as initBackend does.
 */
export async function describeBackends(opts: { threads?: number; modulePaths?: string[] } = {}): Promise<BackendProbe[]> {
  useProductionMode();
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

/**
 * Starting the tfjs wasm backend in Node with a chosen build and thread count.
 *
 * The package's own start-up never uses threads in Node (its feature flag says no there). We load its
 * threaded-SIMD Emscripten factory ourselves: pthreads run as worker_threads on a worker script written from the
 * package's exported worker source, and the XNNPACK pool is sized as asked (the C++ side sizes it to half the
 * logical cores it is told about, capped at 8, so we tell it twice the thread count).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

import { tf } from '../../tf.js';
import { wasmMemoryOf } from '../tfjs_internals.js';
import { disposeWasmGemm } from './gemm.js';

const require = createRequire(import.meta.url);

export type WasmBuild = 'threaded-simd' | 'simd' | 'plain';

export const WASM_MAX_THREADS = 8;

/**
 * The most tensor memory a job may need to run on wasm: its heap is a wasm32 memory (4 GiB at most), and what
 * the tensors need at their peak must fit beside freed blocks the allocator cannot merge.
 */
export const WASM_TENSOR_BYTES = 3 * 2 ** 30;

const WASM_FILES: Record<WasmBuild, { factory: string; binary: string }> = {
  'threaded-simd': {
    factory: 'tfjs-backend-wasm-threaded-simd.js',
    binary: 'tfjs-backend-wasm-threaded-simd.wasm',
  },
  simd: { factory: 'tfjs-backend-wasm.js', binary: 'tfjs-backend-wasm-simd.wasm' },
  plain: { factory: 'tfjs-backend-wasm.js', binary: 'tfjs-backend-wasm.wasm' },
};

interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  HEAPU8: Uint8Array;
  tfjs?: Record<string, (...a: number[]) => number>;
  PThread?: {
    terminateAllThreads(): void;
    runningWorkers?: { unref?(): void }[];
    unusedWorkers?: { unref?(): void }[];
  };
}

interface FactoryConfig {
  locateFile(p: string, prefix: string): string;
  instantiateWasm(
    imports: { env: Record<string, unknown> },
    receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
  ): object;
  mainScriptUrlOrBlob?: string;
  onAbort?(what: unknown): void;
}

type Factory = (config: FactoryConfig) => Promise<EmscriptenModule>;

interface WasmPackage {
  BackendWasm: new (module: EmscriptenModule) => object;
  setThreadsCount(n: number): void;
}

function wasmPackage(): WasmPackage {
  // Registers the wasm kernels (and the package's own backend factory, which we replace below).
  return require('@tensorflow/tfjs-backend-wasm') as WasmPackage;
}

function wasmOutDir(): string {
  return path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
}

export function wasmPackageVersion(): string | undefined {
  try {
    return (require('@tensorflow/tfjs-backend-wasm/package.json') as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** What this Node can run: SIMD and threads (shared memory + atomics). */
export function wasmSupport(): { simd: boolean; threads: boolean } {
  // The probes tfjs-backend-wasm uses (from wasm-feature-detect): a module with one SIMD instruction, and one
  // with a shared memory and an atomic load.
  const simd = WebAssembly.validate(
    new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 10, 9, 1, 7, 0, 65, 0, 253, 15, 26, 11]),
  );
  let threads = false;
  try {
    threads =
      typeof SharedArrayBuffer !== 'undefined' &&
      WebAssembly.validate(
        new Uint8Array([
          0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5, 4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0, 254, 16, 2, 0, 26, 11,
        ]),
      );
  } catch {
    threads = false;
  }
  return { simd, threads };
}

/** The pthread worker script, written once per package version into the OS temp folder. */
function workerScript(): string {
  const { wasmWorkerContents } = require(path.join(wasmOutDir(), 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents: string;
  };
  // The exported source has literal newlines inside string literals ("\n" before export): restore the escapes.
  const source = wasmWorkerContents.replace(/\n/g, '\\n');
  const hash = crypto.createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), 't5cls-wasm');
  const file = path.join(dir, `tfjs-backend-wasm-threaded-simd.${hash}.worker.cjs`);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, source);
    fs.renameSync(tmp, file);
  }
  return file;
}

async function createModule(build: WasmBuild, threads: number): Promise<EmscriptenModule> {
  const dir = wasmOutDir();
  const files = WASM_FILES[build];
  const factoryPath = path.join(dir, files.factory);
  const factory = require(factoryPath) as Factory;
  const worker = build === 'threaded-simd' ? workerScript() : undefined;
  const binary = fs.readFileSync(path.join(dir, files.binary));
  return new Promise<EmscriptenModule>((resolve, reject) => {
    const config: FactoryConfig = {
      locateFile: (p, prefix) => (p.endsWith('.worker.js') && worker ? worker : path.join(prefix || dir, p)),
      instantiateWasm(imports, receive) {
        if (build === 'threaded-simd') imports.env['emscripten_num_logical_cores'] = () => 2 * threads;
        WebAssembly.instantiate(binary, imports as WebAssembly.Imports).then((r) => receive(r.instance, r.module), reject);
        return {};
      },
      onAbort: (what) => reject(new Error(`wasm module aborted: ${String(what)}`)),
    };
    if (build === 'threaded-simd') config.mainScriptUrlOrBlob = factoryPath;
    factory(config).then((mod) => {
      mod.tfjs = {
        init: mod.cwrap('init', null, []),
        initWithThreadsCount: mod.cwrap('init_with_threads_count', null, ['number']),
        getThreadsCount: mod.cwrap('get_threads_count', 'number', []),
        registerTensor: mod.cwrap('register_tensor', null, ['number', 'number', 'number']),
        disposeData: mod.cwrap('dispose_data', null, ['number']),
        dispose: mod.cwrap('dispose', null, []),
      };
      resolve(mod);
    }, reject);
  });
}

interface ActiveWasm {
  build: WasmBuild;
  threads: number;
  backend: object;
}
let active: ActiveWasm | undefined;

/**
 * Makes `wasm` the tfjs backend, running `build` with `threads` pool threads (threaded build only; others run
 * one). Reuses the running module when build and threads match; otherwise the previous wasm backend (and the
 * tensors on it) is disposed first. Returns the pool size the module reports.
 */
export async function activateWasm(build: WasmBuild, threads: number): Promise<{ build: WasmBuild; threads: number }> {
  const pkg = wasmPackage();
  const want = build === 'threaded-simd' ? Math.min(Math.max(1, Math.floor(threads)), WASM_MAX_THREADS) : 1;
  const registered = tf.engine().registry['wasm'];
  if (!active || active.build !== build || active.threads !== want || registered !== active.backend) {
    const mod = await createModule(build, want);
    pkg.setThreadsCount(want);
    const backend = new pkg.BackendWasm(mod);
    // The XNNPACK pool's pthreads (started just above) wait forever for work; as referenced worker_threads they
    // would keep Node from exiting when the program is done.
    for (const w of [...(mod.PThread?.runningWorkers ?? []), ...(mod.PThread?.unusedWorkers ?? [])]) w.unref?.();
    // The previous module's matmul worker (see gemm.ts) would otherwise keep its heap alive.
    const previous = active && wasmMemoryOf(active.backend);
    if (previous) disposeWasmGemm(previous);
    if (tf.findBackendFactory('wasm')) tf.removeBackend('wasm');
    tf.registerBackend('wasm', () => backend as never, 2);
    active = { build, threads: want, backend };
  }
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialize');
  const mod = (active.backend as { wasm: EmscriptenModule }).wasm;
  return { build, threads: mod.tfjs!['getThreadsCount']!() };
}

/** The wasm build running now, if any. */
export function activeWasm(): { build: WasmBuild; threads: number } | undefined {
  return active && tf.engine().registry['wasm'] === active.backend ? { build: active.build, threads: active.threads } : undefined;
}

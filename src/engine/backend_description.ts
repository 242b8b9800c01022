/** The one-line descriptions of a started backend that initBackend logs and returns (`BackendInfo.description`). */
import type { BackendInfo } from './backend_policy.js';
import type { TfjsNodePackage } from './tensorflow/tfjs_node.js';
import { TFJS_NODE_GPU } from './tensorflow/tfjs_node.js';
import type { WasmBuild } from './wasm/activate.js';

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** e.g. "tensorflow (@tensorflow/tfjs-node 4.22.0, CPU, 8 threads)". */
export function describeTensorflow(pkg: TfjsNodePackage, version: string, onGpu: boolean, threads: number): string {
  const device = onGpu ? 'CUDA GPU' : `CPU${pkg === TFJS_NODE_GPU ? ': no GPU visible' : ''}`;
  return `tensorflow (${pkg} ${version}, ${device}, ${plural(threads, 'thread')})`;
}

export interface EmbeddedEngine {
  name: 'wasm' | 'cpu';
  wasmBuild?: WasmBuild;
  /** Threads of the wasm pool (1 on cpu). */
  poolThreads: number;
  /** The native product libraries in use, if any. */
  blas?: { name: string; threads: number };
  ort?: { version: string; threads: number };
}

/** The description, matrix-product route and thread count of a started wasm or cpu engine. */
export function describeEmbedded(e: EmbeddedEngine): Pick<BackendInfo, 'description' | 'matmul' | 'threads'> {
  const native = e.blas !== undefined || e.ort !== undefined;
  const matmul: BackendInfo['matmul'] = e.blas ? 'blas' : e.ort ? 'onnxruntime' : e.name === 'wasm' ? 'wasm' : 'js';
  const buildText = e.wasmBuild === 'threaded-simd' ? 'threaded SIMD build' : e.wasmBuild === 'simd' ? 'SIMD build' : 'plain build';
  const engineText = e.name === 'wasm' ? `wasm (${buildText}${native ? '' : `, ${plural(e.poolThreads, 'thread')}`})` : 'cpu (JavaScript)';
  const libraries = [...(e.blas ? [e.blas.name] : []), ...(e.ort ? [`ONNX Runtime ${e.ort.version}`] : [])].join(' and ');
  const threads = e.blas?.threads ?? e.ort?.threads ?? e.poolThreads;
  const description = native
    ? `${engineText} + ${libraries} matmul, ${plural(threads, 'thread')}`
    : `${engineText}, ${e.name === 'wasm' ? 'wasm' : 'JavaScript'} matmul`;
  return { description, matmul, threads };
}

import { initBackend } from '../../src/engine/init.js';
import { WASM_GEMM_MIN } from '../../src/engine/wasm/matmul.js';

/**
 * `cpu` and `wasm`: as they start by default (large products in the system BLAS where it loads, the rest in ONNX
 * Runtime). `cpu-ort`: the cpu engine on a machine without a system BLAS (every product in ONNX Runtime).
 * `wasm-pure`: the wasm backend as it runs when ONNX Runtime cannot load (threaded build, our WebAssembly matrix
 * product), with every product, however small, sent through that product.
 */
export type TestBackend = 'cpu' | 'cpu-ort' | 'wasm' | 'wasm-pure';

const WASM_GEMM_DEFAULTS = { ...WASM_GEMM_MIN };

/**
 * Backends the numerical tests run on: `T5CLS_TEST_BACKENDS` (comma-separated), default cpu, cpu-ort, wasm and
 * wasm-pure, so that every kernel of ours is checked against the fixtures too.
 */
export function testBackends(): TestBackend[] {
  const list = (process.env.T5CLS_TEST_BACKENDS ?? 'cpu,cpu-ort,wasm,wasm-pure').split(',').map((s) => s.trim()).filter(Boolean);
  return list as TestBackend[];
}

export async function useBackend(name: TestBackend): Promise<void> {
  if (name === 'wasm-pure') {
    await initBackend('wasm', { nativeMatmul: false, wasmBuild: 'threaded-simd', threads: 2 });
    Object.assign(WASM_GEMM_MIN, { macs: 0, rows: 1 });
  } else if (name === 'cpu-ort') {
    await initBackend('cpu', { blas: false });
    Object.assign(WASM_GEMM_MIN, WASM_GEMM_DEFAULTS);
  } else {
    await initBackend(name);
    Object.assign(WASM_GEMM_MIN, WASM_GEMM_DEFAULTS);
  }
}

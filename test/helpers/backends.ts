import { initBackend } from '../../src/backend.js';

/**
 * Backends the numerical tests run on: `T5CLS_TEST_BACKENDS` (comma-separated), default cpu and wasm, so that
 * every kernel of ours is checked against the fixtures too.
 */
export function testBackends(): ('cpu' | 'wasm')[] {
  const list = (process.env.T5CLS_TEST_BACKENDS ?? 'cpu,wasm').split(',').map((s) => s.trim()).filter(Boolean);
  return list as ('cpu' | 'wasm')[];
}

export async function useBackend(name: 'cpu' | 'wasm'): Promise<void> {
  await initBackend(name);
}

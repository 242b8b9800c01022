/**
 * Registers the kernels T5 training needs that the embedded backends lack or implement slowly, one per file:
 * `UnsortedSegmentSum` (unsorted_segment_sum.ts), zero-copy `Identity` on wasm (identity.ts), `Transpose` without
 * needless copies (transpose.ts), block-copy `GatherV2` on wasm (gather.ts).
 */
import { replaceKernel, restoreKernel, stockKernel } from '../tfjs_internals.js';
import { blockGather } from './gather.js';
import { zeroCopyIdentity } from './identity.js';
import { runTranspose } from './transpose.js';
import { unsortedSegmentSum } from './unsorted_segment_sum.js';

export { unsortedSegmentSum } from './unsorted_segment_sum.js';

export interface ExtraKernelOptions {
  /** Zero-copy Identity on wasm (default true). */
  zeroCopyIdentity?: boolean;
}

/** Registers our extra kernels for `backendName`; returns their names. */
export function installExtraKernels(backendName: 'cpu' | 'wasm', options: ExtraKernelOptions = {}): string[] {
  const names: string[] = [];
  replaceKernel('UnsortedSegmentSum', backendName, 'segment-sum', unsortedSegmentSum);
  names.push('UnsortedSegmentSum');
  if (backendName === 'wasm') {
    const stock = stockKernel('Identity', 'wasm');
    if (stock && options.zeroCopyIdentity !== false) {
      replaceKernel('Identity', 'wasm', 'zero-copy', zeroCopyIdentity(stock.kernelFunc));
      names.push('Identity');
    } else {
      restoreKernel('Identity', 'wasm');
    }
  }
  return names;
}

/**
 * Registers the kernels that only move data faster (Transpose; GatherV2 on wasm); returns their names. They compute
 * exactly what the stock kernels compute.
 */
export function installCopyAvoidingKernels(backendName: 'cpu' | 'wasm'): string[] {
  const names: string[] = [];
  const transpose = stockKernel('Transpose', backendName);
  if (transpose) {
    replaceKernel('Transpose', backendName, 'run-copy', runTranspose(transpose.kernelFunc, backendName === 'cpu'));
    names.push('Transpose');
  }
  const gather = backendName === 'wasm' ? stockKernel('GatherV2', 'wasm') : undefined;
  if (gather) {
    replaceKernel('GatherV2', 'wasm', 'block-copy', blockGather(gather.kernelFunc));
    names.push('GatherV2');
  }
  return names;
}

/** Puts the stock kernels back (UnsortedSegmentSum is removed again on wasm, which has none). */
export function restoreExtraKernels(backendName: 'cpu' | 'wasm'): void {
  restoreKernel('UnsortedSegmentSum', backendName);
  restoreKernel('Identity', backendName);
  restoreKernel('GatherV2', backendName);
  restoreKernel('Transpose', backendName);
}

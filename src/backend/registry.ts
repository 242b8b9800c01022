/**
 * Replacing a backend's kernel with ours while keeping the stock one reachable (for fallbacks) and restorable.
 */
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs';

import { tf } from '../tf.js';

const stockKernels = new Map<string, KernelConfig | undefined>();
const replaced = new Map<string, string>();

function key(kernelName: string, backendName: string): string {
  return `${backendName}/${kernelName}`;
}

/** The kernel the backend package registered (before any of ours), or undefined if it has none. */
export function stockKernel(kernelName: string, backendName: string): KernelConfig | undefined {
  const k = key(kernelName, backendName);
  if (!stockKernels.has(k)) stockKernels.set(k, tf.getKernel(kernelName, backendName));
  return stockKernels.get(k);
}

/**
 * Registers `kernelFunc` for (kernelName, backendName) in place of whatever is there; `tag` names the
 * replacement (see `replacementOf`). The stock kernel's setup/dispose hooks are kept, so that the stock
 * function stays callable from ours even when the backend initializes after the swap.
 */
export function replaceKernel(kernelName: string, backendName: string, tag: string, kernelFunc: KernelFunc): void {
  const stock = stockKernel(kernelName, backendName);
  if (tf.getKernel(kernelName, backendName)) tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({
    kernelName,
    backendName,
    kernelFunc,
    ...(stock?.setupFunc ? { setupFunc: stock.setupFunc } : {}),
    ...(stock?.disposeFunc ? { disposeFunc: stock.disposeFunc } : {}),
  });
  replaced.set(key(kernelName, backendName), tag);
}

/** Puts the stock kernel back (or removes ours if the backend had none). */
export function restoreKernel(kernelName: string, backendName: string): void {
  const k = key(kernelName, backendName);
  if (!replaced.has(k)) return;
  const stock = stockKernel(kernelName, backendName);
  if (tf.getKernel(kernelName, backendName)) tf.unregisterKernel(kernelName, backendName);
  if (stock) tf.registerKernel(stock);
  replaced.delete(k);
}

/** The tag of our kernel registered for (kernelName, backendName), or undefined when the stock one is in use. */
export function replacementOf(kernelName: string, backendName: string): string | undefined {
  return replaced.get(key(kernelName, backendName));
}

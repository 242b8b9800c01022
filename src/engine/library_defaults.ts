/**
 * A model used without initBackend gets, from the first model made, what initBackend sets up for tfjs's own cpu
 * backend: our embedding gradient (the stock cpu UnsortedSegmentSum makes one pass per vocabulary entry) and tfjs's
 * production mode (no "install tfjs-node" hint: t5cls has engines of its own). Once, never at import, and nothing
 * once initBackend has run, which sets up each backend itself.
 */
import { installExtraKernels } from './kernels/extra.js';
import { useProductionMode } from './production_mode.js';

let settled = false;

export function useLibraryDefaultsOnce(): void {
  if (settled) return;
  settled = true;
  installExtraKernels('cpu');
  useProductionMode();
}

export function leaveDefaultsToInitBackend(): void {
  settled = true;
}

/** Where a command computes: the TensorFlow.js backend, the device and the CPU threads. */
import { z } from 'zod';
import { int } from './values.js';

export const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;

export const backend = z.enum(BACKENDS).default('auto').describe('TensorFlow.js backend: auto picks tfjs-node-gpu, tfjs-node, then wasm');
export const device = z.enum(['auto', 'cuda', 'cpu']).default('auto').describe('cuda requires a working @tensorflow/tfjs-node-gpu');
export const threads = int(1).optional().describe('CPU threads for the wasm and native matmul kernels (default: all cores)');

export const engine = { backend, device, threads };
export type EngineParams = z.infer<z.ZodObject<typeof engine>>;

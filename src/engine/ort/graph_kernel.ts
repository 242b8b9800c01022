/**
 * `T5clsNativeGraph`: a tfjs kernel (cpu, wasm) that runs a whole ONNX graph in ONNX Runtime in one call, its
 * inputs read from and its outputs written to tfjs tensors' memory. The model uses it for inference stacks (see
 * model/native_graphs.ts): one native call instead of hundreds of small kernels, with ONNX Runtime's fused
 * attention and layer norms on every core. It has no gradient: it only runs when no gradient is being recorded.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../../tf.js';
import { nativeGraphs } from '../flags.js';
import { replaceKernel, restoreKernel, storageFor } from '../tfjs_internals.js';
import type { OrtBuffer, OrtMatMul } from './runtime.js';

export const GRAPH_KERNEL = 'T5clsNativeGraph';

export interface GraphDefinition {
  /** Identifies the graph among every graph built (the loaded session is cached under it). */
  key: string;
  build: () => Uint8Array;
  /** Input names, in the order of the tensors passed. */
  inputs: string[];
  outputs: string[];
}

const definitions = new Map<string, GraphDefinition>();

function graphKernel(ort: OrtMatMul): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { key, outputShapes } = attrs as unknown as { key: string; outputShapes: number[][] };
    const graph = definitions.get(key);
    if (!graph) throw new Error(`${GRAPH_KERNEL}: unknown graph ${key}`);
    const storage = storageFor(backend);
    const infos = graph.inputs.map((name, i) => {
      const info = (inputs as Record<string, TensorInfo>)[`i${i}`];
      if (!info || info.dtype !== 'float32') throw new Error(`${GRAPH_KERNEL}: input ${name} must be a float32 tensor`);
      return info;
    });
    // Allocate first: on wasm an allocation may grow the heap and detach views taken before it.
    const outs = outputShapes.map((shape) => storage.alloc(shape, 'float32').info);
    const copy = storage.shared; // the native binding rejects SharedArrayBuffer views (threaded wasm)
    const feeds: Record<string, OrtBuffer> = {};
    infos.forEach((info, i) => {
      const data = storage.read(info) as Float32Array;
      feeds[graph.inputs[i]!] = { data: copy ? data.slice() : data, dims: info.shape };
    });
    const fetches: Record<string, OrtBuffer> = {};
    const views = outs.map((info) => storage.read(info) as Float32Array);
    outs.forEach((info, i) => {
      fetches[graph.outputs[i]!] = { data: copy ? new Float32Array(views[i]!.length) : views[i]!, dims: info.shape };
    });
    try {
      ort.runGraph(key, graph.build, feeds, fetches);
    } catch (e) {
      for (const info of outs) storage.dispose(info);
      throw e;
    }
    if (copy) outs.forEach((info, i) => (storage.read(info) as Float32Array).set(fetches[graph.outputs[i]!]!.data));
    return outs;
  };
}

/** Registers the graph kernel on `backendName` when ONNX Runtime is loaded, else removes it. */
export function installGraphKernel(backendName: 'cpu' | 'wasm', ort: OrtMatMul | undefined): void {
  if (ort) replaceKernel(GRAPH_KERNEL, backendName, 'native', graphKernel(ort));
  else restoreKernel(GRAPH_KERNEL, backendName);
}

interface EngineState {
  state: { gradientDepth: number };
}

/** Whether a graph can run now: enabled, registered for the backend in use, and no gradient being recorded. */
export function nativeGraphAvailable(): boolean {
  return (
    nativeGraphs.enabled &&
    (tf.engine() as unknown as EngineState).state.gradientDepth === 0 &&
    tf.getKernel(GRAPH_KERNEL, tf.getBackend()) !== undefined
  );
}

/**
 * Runs `f`, which calls native graphs. If ONNX Runtime fails there (an onnxruntime-node build that lacks an
 * operator, say), graphs are turned off for the rest of the process with one warning, and the result is undefined:
 * the caller then takes the tfjs ops, which give the same results.
 */
export function withNativeGraphFallback<T>(what: string, f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    nativeGraphs.enabled = false;
    const reason = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    process.emitWarning(`ONNX Runtime could not run the ${what} graph (${reason}); inference continues on tfjs kernels`, {
      code: 'T5CLS_NATIVE_GRAPH',
    });
    return undefined;
  }
}

/** Native graphs run so far (lets tests and diagnostics see that the graph path, not the tfjs ops, ran). */
export const nativeGraphRuns = { count: 0 };

/** Runs `graph` on `inputs` (float32, in the order of `graph.inputs`); outputs get `outputShapes`. */
export function runNativeGraph(graph: GraphDefinition, inputs: tf.Tensor[], outputShapes: number[][]): tf.Tensor[] {
  if (inputs.length !== graph.inputs.length) throw new Error(`${graph.key}: expected ${graph.inputs.length} inputs, got ${inputs.length}`);
  if (outputShapes.length !== graph.outputs.length) throw new Error(`${graph.key}: expected ${graph.outputs.length} output shapes`);
  if (!definitions.has(graph.key)) definitions.set(graph.key, graph);
  const named: Record<string, tf.Tensor> = {};
  inputs.forEach((t, i) => (named[`i${i}`] = t));
  nativeGraphRuns.count++;
  return tf.engine().runKernel(GRAPH_KERNEL, named as never, { key: graph.key, outputShapes } as never) as unknown as tf.Tensor[];
}

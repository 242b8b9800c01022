/**
 * tfjs's backward pass (`engine.gradients`, behind tf.grad, tf.variableGrads, …) keeps every intermediate gradient
 * and every tensor saved by the forward pass until the whole backward pass is done, so its peak memory is about
 * twice the activations. This replacement computes the same gradients in the same order, but frees a node's output
 * gradients and its saved tensors as soon as that node's gradient has been computed (each is used by that node
 * only). Higher-order gradients (a gradient computed while another is being recorded) keep tfjs's own code, and so
 * does everything when fused kernels are off (T5CLS_FUSED_KERNELS=0).
 */
import { tf } from '../../tf.js';
import { fusedKernels } from '../flags.js';

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

interface EngineInternals {
  state: { gradientDepth: number; activeTape: TapeNode[] | null };
  gradients: GradientsFn;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T>(nameOrFn: string | (() => T), fn?: () => T): T;
}

type GradientsFn = (
  this: EngineInternals,
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy?: tf.Tensor,
  allowNoGradients?: boolean,
) => { value: tf.Tensor; grads: tf.Tensor[] };

const originals = new WeakMap<object, GradientsFn>();

/** tfjs's getFilteredNodesXToY (tape.ts): the nodes on a path from some x to y, inputs pruned to those from x. */
function filteredNodes(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set<number>(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    for (const name in node.inputs) {
      if (fromX.has(node.inputs[name]!.id)) {
        for (const o of node.outputs) fromX.add(o.id);
        nodesFromX.add(node.id);
        break;
      }
    }
  }
  const toY = new Set<number>([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    if (node.outputs.some((o) => toY.has(o.id))) {
      for (const name in node.inputs) {
        toY.add(node.inputs[name]!.id);
        nodesToY.add(node.id);
      }
    }
  }
  const out: TapeNode[] = [];
  for (const node of tape) {
    if (!nodesFromX.has(node.id) || !nodesToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const name in node.inputs) if (fromX.has(node.inputs[name]!.id)) inputs[name] = node.inputs[name]!;
    out.push({ ...node, inputs, outputs: node.outputs });
  }
  return out;
}

function leanGradients(
  this: EngineInternals,
  f: () => tf.Tensor,
  xs: tf.Tensor[],
  dy?: tf.Tensor,
  allowNoGradients = false,
): { value: tf.Tensor; grads: tf.Tensor[] } {
  const original = originals.get(this)!;
  if (this.state.gradientDepth !== 0 || !fusedKernels.enabled) return original.call(this, f, xs, dy, allowNoGradients);
  if (xs.length === 0) throw new Error('gradients() received an empty list of xs.');
  if (dy != null && dy.dtype !== 'float32') throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
  const y = this.scopedRun(
    () => this.startTape(),
    () => this.endTape(),
    () => this.tidy('forward', f),
  );
  if (!(y instanceof tf.Tensor)) throw new Error('The result y returned by f() must be a tensor.');
  const tape = this.state.activeTape ?? [];
  const filtered = filteredNodes(tape, xs, y);
  if (!allowNoGradients && filtered.length === 0 && xs.length > 0) {
    throw new Error(
      'Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed encloses all operations that lead from x to y.',
    );
  }
  return this.tidy('backward', () => {
    // Gradient per tensor id; a gradient tensor may stand for several ids (a gradient function may hand back its dy,
    // or one tensor for two inputs), so each is freed when no id refers to it any more.
    const grads = new Map<number, tf.Tensor>();
    const refs = new Map<tf.Tensor, number>();
    const release = (t: tf.Tensor) => {
      const n = (refs.get(t) ?? 0) - 1;
      if (n > 0) {
        refs.set(t, n);
        return;
      }
      refs.delete(t);
      if (t !== dy) t.dispose();
    };
    const setGrad = (id: number, t: tf.Tensor) => {
      const old = grads.get(id);
      grads.set(id, t);
      refs.set(t, (refs.get(t) ?? 0) + 1);
      if (old) release(old);
    };
    setGrad(y.id, dy ?? tf.ones(y.shape));
    const keep = new Set<number>(xs.map((x) => x.id));
    for (let i = filtered.length - 1; i >= 0; i--) {
      const node = filtered[i]!;
      const dys = node.outputs.map((o) => grads.get(o.id) ?? null);
      if (node.gradient == null) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
      const inputGradients = node.gradient(dys);
      for (const name in node.inputs) {
        if (!(name in inputGradients)) {
          throw new Error(`Cannot backprop through input ${name}. Available gradients found: ${Object.keys(inputGradients)}.`);
        }
        const dx = this.tidy(() => inputGradients[name]!());
        if (dx.dtype !== 'float32') {
          throw new Error(
            `Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have 'float32' dtype, but has '${dx.dtype}'`,
          );
        }
        const x = node.inputs[name]!;
        if (!tf.util.arraysEqual(dx.shape, x.shape)) {
          throw new Error(
            `Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape '${dx.shape}', which does ` +
              `not match the shape of the input '${x.shape}'`,
          );
        }
        const current = grads.get(x.id);
        if (current == null) {
          setGrad(x.id, dx);
        } else {
          setGrad(x.id, tf.add(current, dx));
          if (!refs.has(dx) && dx !== dy) dx.dispose();
        }
      }
      // This node was the only consumer of its output gradients and of the tensors it saved.
      for (const o of node.outputs) {
        const g = grads.get(o.id);
        if (g == null || keep.has(o.id)) continue;
        grads.delete(o.id);
        release(g);
      }
      for (const t of node.saved ?? []) t.dispose();
    }
    const out = xs.map((x) => grads.get(x.id)) as tf.Tensor[];
    for (const node of tape) for (const t of node.saved ?? []) t.dispose();
    this.state.activeTape = null;
    return { value: y, grads: out };
  });
}

/** Puts the lean backward pass in place of tfjs's (once per engine). */
export function installLeanGradients(): void {
  const engine = tf.engine() as unknown as EngineInternals;
  if (originals.has(engine)) return;
  originals.set(engine, engine.gradients);
  engine.gradients = leanGradients;
}

/** Puts tfjs's own backward pass back. */
export function restoreGradients(): void {
  const engine = tf.engine() as unknown as EngineInternals;
  const original = originals.get(engine);
  if (!original) return;
  engine.gradients = original;
  originals.delete(engine);
}

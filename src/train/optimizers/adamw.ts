/**
 * AdamW with decoupled weight decay, as torch 1.13 `torch.optim.AdamW` computes it (`_single_tensor_adamw`, no
 * amsgrad), on float32 tensors in torch's order of operations:
 *
 *   p *= 1 - lr·wd;  m = β1·m + (1-β1)·g;  v = β2·v + ((1-β2)·g)·g;
 *   denom = sqrt(v) / sqrt(1-β2^t) + eps;  p += (-lr / (1-β1^t))·m / denom
 *
 * Scalars are computed in float64 (as Python does) and rounded to float32 where torch hands them to a kernel.
 */
import { tf } from '../../tf.js';
import { gradientPairs, groupState, type NamedTensor } from './shared.js';
import { FormatError, UsageError } from '../../errors.js';
import { updateInPlace } from '../../engine/host_update.js';
import { runElementwise, type ElementwiseSpec, type Vec } from '../../engine/wasm/simd.js';

const f32 = Math.fround;

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /**
   * The caller keeps no array it read from a parameter (`dataSync()` on the cpu backend hands out the tensor's own
   * memory) across a step, so parameters may be updated in their own memory there too (on wasm they always are).
   * Saves a fresh parameter-sized array per step; the trainer sets it.
   */
  inPlaceParameters?: boolean;
}

interface ParamState {
  step: number;
  expAvg: tf.Variable;
  expAvgSq: tf.Variable;
}

const STATE_KEYS = ['step', 'exp_avg', 'exp_avg_sq'] as const;

export class AdamW extends tf.Optimizer {
  static get className(): string {
    return 'AdamW';
  }

  // tf.Optimizer answers `instanceof` by duck typing, which subclasses inherit: any optimizer would pass
  // `x instanceof AdamW`. Use the prototype chain instead.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }

  /** Learning rate of the next step; a learning-rate schedule sets it between steps. */
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  readonly inPlaceParameters: boolean;

  /** Per variable name, in the order the variables were first updated. */
  private state = new Map<string, ParamState>();

  constructor(options: AdamWOptions = {}) {
    super();
    this.lr = options.lr ?? 1e-3;
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 1e-2;
    this.inPlaceParameters = options.inPlaceParameters ?? false;
    // torch's checks and messages.
    if (!(this.lr >= 0)) throw new UsageError(`Invalid learning rate: ${this.lr}`);
    if (!(this.eps >= 0)) throw new UsageError(`Invalid epsilon value: ${this.eps}`);
    if (!(this.betas[0] >= 0 && this.betas[0] < 1)) throw new UsageError(`Invalid beta parameter at index 0: ${this.betas[0]}`);
    if (!(this.betas[1] >= 0 && this.betas[1] < 1)) throw new UsageError(`Invalid beta parameter at index 1: ${this.betas[1]}`);
    if (!(this.weightDecay >= 0)) throw new UsageError(`Invalid weight_decay value: ${this.weightDecay}`);
  }

  /** Step count of one variable (torch's `state["step"]`). */
  stepOf(variableName: string): number {
    return this.state.get(variableName)?.step ?? 0;
  }

  applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    for (const [name, variable, gradient] of gradientPairs(variableGradients, 'AdamW')) this.updateOne(name, variable, gradient);
    this.incrementIterations();
  }

  private updateOne(name: string, variable: tf.Variable, gradient: tf.Tensor): void {
    if (!tf.util.arraysEqual(gradient.shape, variable.shape)) {
      throw new Error(`AdamW: gradient of "${name}" has shape [${gradient.shape}] but the variable has [${variable.shape}]`);
    }
    let st = this.state.get(name);
    if (st === undefined) {
      const zeros = () => tf.tidy(() => tf.zeros(variable.shape, 'float32').variable(false));
      st = { step: 0, expAvg: zeros(), expAvgSq: zeros() };
      this.state.set(name, st);
    } else if (!tf.util.arraysEqual(st.expAvg.shape, variable.shape)) {
      throw new Error(`AdamW: the saved state of "${name}" has shape [${st.expAvg.shape}] but the variable has [${variable.shape}]`);
    }
    const s = st;
    s.step += 1;
    const [beta1, beta2] = this.betas;
    const lr = this.lr;
    const biasCorrection1 = 1 - Math.pow(beta1, s.step);
    const biasCorrection2 = 1 - Math.pow(beta2, s.step);
    const stepSize = lr / biasCorrection1;
    const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);

    // cpu and wasm: the same float32 operations in the same order, in one pass over parameter, state and gradient
    // (a SIMD kernel on the wasm heap, else a loop), in place; other backends take the tensor ops below.
    const decay = f32(1 - lr * this.weightDecay);
    const b1 = f32(beta1);
    const c1 = f32(1 - beta1);
    const b2 = f32(beta2);
    const c2 = f32(1 - beta2);
    const bc2 = f32(biasCorrection2Sqrt);
    const eps = f32(this.eps);
    const negStep = f32(-stepSize);
    const fused = updateInPlace(
      [variable, s.expAvg, s.expAvgSq],
      [gradient],
      (outs, ins, memory) => {
        const [pOut, mOut, vOut] = outs as [Float32Array, Float32Array, Float32Array];
        const [pIn, mIn, vIn, g] = ins as [Float32Array, Float32Array, Float32Array, Float32Array];
        const scalars = [decay, b1, c1, b2, c2, bc2, eps, negStep];
        runElementwise(ADAMW_KERNEL, memory, outs, ins, scalars, pOut.length, (from) =>
          adamwElements(from, pOut, mOut, vOut, pIn, mIn, vIn, g, decay, b1, c1, b2, c2, bc2, eps, negStep),
        );
        // The moments are this optimizer's own: written in place on every embedded backend.
      },
      [],
      [this.inPlaceParameters, true, true],
    );
    if (fused) return;

    tf.tidy(() => {
      const g = gradient.dtype === 'float32' ? gradient : tf.cast(gradient, 'float32');
      const p = tf.mul(variable, tf.scalar(f32(1 - lr * this.weightDecay)));
      const m = tf.add(tf.mul(s.expAvg, tf.scalar(f32(beta1))), tf.mul(g, tf.scalar(f32(1 - beta1))));
      const v = tf.add(tf.mul(s.expAvgSq, tf.scalar(f32(beta2))), tf.mul(tf.mul(tf.scalar(f32(1 - beta2)), g), g));
      s.expAvg.assign(m);
      s.expAvgSq.assign(v);
      const denom = tf.add(tf.div(tf.sqrt(v), tf.scalar(f32(biasCorrection2Sqrt))), tf.scalar(f32(this.eps)));
      variable.assign(tf.add(p, tf.div(tf.mul(tf.scalar(f32(-stepSize)), m), denom)));
    });
  }

  override dispose(): void {
    for (const st of this.state.values()) {
      st.expAvg.dispose();
      st.expAvgSq.dispose();
    }
    this.state.clear();
  }

  /**
   * The optimizer state as new tensors the caller owns: `iter`, then per variable (in first-update order)
   * `<name>/step`, `<name>/exp_avg`, `<name>/exp_avg_sq`.
   */
  override async getWeights(): Promise<NamedTensor[]> {
    const out: NamedTensor[] = [await this.saveIterations()];
    for (const [name, st] of this.state) {
      out.push({ name: `${name}/step`, tensor: tf.scalar(st.step, 'int32') });
      out.push({ name: `${name}/exp_avg`, tensor: st.expAvg.clone() });
      out.push({ name: `${name}/exp_avg_sq`, tensor: st.expAvgSq.clone() });
    }
    return out;
  }

  /** Replaces the whole state with one `getWeights` returned (the tensors are copied; the caller keeps its own). */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const groups = groupState(weightValues, STATE_KEYS, 'AdamW');
    const next = new Map<string, ParamState>();
    for (const [name, g] of groups) {
      for (const key of STATE_KEYS) {
        if (!g.has(key)) throw new FormatError(`AdamW state: "${name}/${key}" is missing`);
      }
      const step = (await g.get('step')!.data())[0] ?? NaN;
      if (!Number.isInteger(step) || step < 0) throw new FormatError(`AdamW state: "${name}/step" is ${step}, expected a whole number ≥ 0`);
      const m = g.get('exp_avg')!;
      const v = g.get('exp_avg_sq')!;
      if (!tf.util.arraysEqual(m.shape, v.shape)) {
        throw new FormatError(`AdamW state: "${name}/exp_avg" has shape [${m.shape}] but "${name}/exp_avg_sq" has [${v.shape}]`);
      }
      next.set(name, { step, expAvg: asFloatVariable(m), expAvgSq: asFloatVariable(v) });
    }
    if (weightValues[0]?.name === 'iter') this.iterations_ = (await weightValues[0].tensor.data())[0]!;
    this.dispose();
    this.state = next;
  }

  getConfig(): tf.serialization.ConfigDict {
    return { lr: this.lr, betas: [...this.betas], eps: this.eps, weightDecay: this.weightDecay };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(config as unknown as AdamWOptions);
  }
}

tf.serialization.registerClass(AdamW);

/**
 * adamwElements as a SIMD kernel: outputs p, m, v; inputs p, m, v, g; scalars decay, β1, 1-β1, β2, 1-β2,
 * sqrt(1-β2^t), eps, -stepSize.
 */
const ADAMW_KERNEL: ElementwiseSpec = {
  outputs: 3,
  inputs: 4,
  scalars: 8,
  body(k) {
    const [decay, b1, c1, b2, c2, bc2, eps, negStep] = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => k.scalar(i)) as Vec[];
    const g = k.input(3);
    const m = k.bind(k.add(k.mul(k.input(1), b1!), k.mul(g, c1!)));
    const v = k.bind(k.add(k.mul(k.input(2), b2!), k.mul(k.mul(c2!, g), g)));
    const denom = k.add(k.div(k.sqrt(v), bc2!), eps!);
    k.output(0, k.add(k.mul(k.input(0), decay!), k.div(k.mul(negStep!, m), denom)));
    k.output(1, m);
    k.output(2, v);
  },
};

/** One AdamW step over float32 arrays (outputs may be the inputs themselves), in the tensor path's order. */
function adamwElements(
  from: number,
  pOut: Float32Array,
  mOut: Float32Array,
  vOut: Float32Array,
  pIn: Float32Array,
  mIn: Float32Array,
  vIn: Float32Array,
  g: Float32Array,
  decay: number,
  b1: number,
  c1: number,
  b2: number,
  c2: number,
  bc2: number,
  eps: number,
  negStep: number,
): void {
  const n = pOut.length;
  for (let i = from; i < n; i++) {
    const gi = g[i]!;
    const m = f32(f32(mIn[i]! * b1) + f32(gi * c1));
    const v = f32(f32(vIn[i]! * b2) + f32(f32(c2 * gi) * gi));
    const denom = f32(f32(f32(Math.sqrt(v)) / bc2) + eps);
    pOut[i] = f32(f32(pIn[i]! * decay) + f32(f32(negStep * m) / denom));
    mOut[i] = m;
    vOut[i] = v;
  }
}

function asFloatVariable(t: tf.Tensor): tf.Variable {
  return tf.tidy(() => tf.variable(t.dtype === 'float32' ? t : tf.cast(t, 'float32'), false));
}

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
import { fusedAdamWStep, type AdamWScalars } from '../../engine/ops.js';

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

    // The scalars in float32, as torch hands them to its kernels.
    const k: AdamWScalars = {
      decay: f32(1 - lr * this.weightDecay),
      beta1: f32(beta1),
      oneMinusBeta1: f32(1 - beta1),
      beta2: f32(beta2),
      oneMinusBeta2: f32(1 - beta2),
      biasCorrection2Sqrt: f32(biasCorrection2Sqrt),
      eps: f32(this.eps),
      negStepSize: f32(-stepSize),
    };
    // cpu and wasm: the same float32 operations in one in-place pass (see engine/kernels/adamw_step.ts).
    if (fusedAdamWStep(variable, s.expAvg, s.expAvgSq, gradient, k, this.inPlaceParameters)) return;

    tf.tidy(() => {
      const g = gradient.dtype === 'float32' ? gradient : tf.cast(gradient, 'float32');
      const p = tf.mul(variable, k.decay);
      const m = tf.add(tf.mul(s.expAvg, k.beta1), tf.mul(g, k.oneMinusBeta1));
      const v = tf.add(tf.mul(s.expAvgSq, k.beta2), tf.mul(tf.mul(k.oneMinusBeta2, g), g));
      s.expAvg.assign(m);
      s.expAvgSq.assign(v);
      const denom = tf.add(tf.div(tf.sqrt(v), k.biasCorrection2Sqrt), k.eps);
      variable.assign(tf.add(p, tf.div(tf.mul(k.negStepSize, m), denom)));
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

function asFloatVariable(t: tf.Tensor): tf.Variable {
  return tf.tidy(() => tf.variable(t.dtype === 'float32' ? t : tf.cast(t, 'float32'), false));
}

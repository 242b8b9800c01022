/**
 * Adafactor as Hugging Face transformers 4.32.1 implements it (`transformers.optimization.Adafactor`), on float32
 * tensors with torch's order of operations, so one step gives the same parameters as HF within float32 rounding.
 *
 * Per parameter and step: RMS of the parameter (before the update) → learning rate (relative step, parameter scale);
 * second moments factored into row/column means of grad² + eps1 for tensors of rank ≥ 2, a full tensor otherwise;
 * update = grad / sqrt(second moment), divided by max(1, RMS(update) / clipThreshold), times lr; optional first
 * moment (beta1); weight decay p += (-weightDecay · lr) · p; then p -= update.
 */
import { tf } from '../../tf.js';
import { gradientPairs, groupState, type NamedTensor } from './shared.js';
import { FormatError, UsageError } from '../../errors.js';
import { fusedAdafactorStep } from '../../engine/ops.js';

const f32 = Math.fround;

export interface AdafactorOptions {
  /** External learning rate; must be left out (null) with `relativeStep`. */
  lr?: number | null;
  /** [eps1 added to grad², eps2 floor of the parameter scale]. */
  eps?: [number, number];
  clipThreshold?: number;
  decayRate?: number;
  /** First-moment coefficient; left out (null): no first moment. */
  beta1?: number | null;
  weightDecay?: number;
  scaleParameter?: boolean;
  relativeStep?: boolean;
  warmupInit?: boolean;
  /** As AdamW's: parameters may be updated in their own memory on the cpu backend too (the trainer sets it). */
  inPlaceParameters?: boolean;
}

interface ParamState {
  step: number;
  /** RMS of the parameter before its last update (HF's `state["RMS"]`), a float32 scalar. */
  rms: tf.Variable;
  expAvg?: tf.Variable;
  expAvgSqRow?: tf.Variable;
  expAvgSqCol?: tf.Variable;
  expAvgSq?: tf.Variable;
}

const STATE_KEYS = ['step', 'rms', 'exp_avg', 'exp_avg_sq_row', 'exp_avg_sq_col', 'exp_avg_sq'] as const;
type StateKey = (typeof STATE_KEYS)[number];

export class Adafactor extends tf.Optimizer {
  static get className(): string {
    return 'Adafactor';
  }

  // tf.Optimizer answers `instanceof` by duck typing, which subclasses inherit: any optimizer would pass
  // `x instanceof Adafactor`. Use the prototype chain instead.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }

  /** External learning rate (used when `relativeStep` is false); a schedule may change it between steps. */
  lr: number | null;
  readonly eps: [number, number];
  readonly clipThreshold: number;
  readonly decayRate: number;
  readonly beta1: number | null;
  readonly weightDecay: number;
  readonly scaleParameter: boolean;
  readonly relativeStep: boolean;
  readonly warmupInit: boolean;
  readonly inPlaceParameters: boolean;

  /** Per variable name, in the order the variables were first updated. */
  private state = new Map<string, ParamState>();

  constructor(options: AdafactorOptions = {}) {
    super();
    this.lr = options.lr ?? null;
    this.eps = options.eps ?? [1e-30, 1e-3];
    this.clipThreshold = options.clipThreshold ?? 1.0;
    this.decayRate = options.decayRate ?? -0.8;
    this.beta1 = options.beta1 ?? null;
    this.weightDecay = options.weightDecay ?? 0.0;
    this.scaleParameter = options.scaleParameter ?? true;
    this.relativeStep = options.relativeStep ?? true;
    this.warmupInit = options.warmupInit ?? false;
    this.inPlaceParameters = options.inPlaceParameters ?? false;
    if (this.lr !== null && this.relativeStep) {
      throw new UsageError('Cannot combine manual `lr` and `relative_step=True` options');
    }
    if (this.warmupInit && !this.relativeStep) {
      throw new UsageError('`warmup_init=True` requires `relative_step=True`');
    }
    // HF would fail at its first step with a TypeError; say it up front.
    if (!this.relativeStep && this.lr === null) {
      throw new UsageError('Adafactor needs a learning rate `lr` when relative_step is false');
    }
    if (!Array.isArray(this.eps) || this.eps.length !== 2) {
      throw new UsageError(`Adafactor eps must be a pair [eps1, eps2], got ${JSON.stringify(this.eps)}`);
    }
  }

  /** The step size before parameter scaling (HF's `rel_step_sz`). */
  private relStepSize(step: number): number {
    if (this.relativeStep) {
      const minStep = this.warmupInit ? 1e-6 * step : 1e-2;
      return Math.min(minStep, 1.0 / Math.sqrt(step));
    }
    return this.lr as number;
  }

  /**
   * HF's `_get_lr` for a parameter at its current step and RMS. When the parameter scale is the RMS tensor, HF's lr
   * is a float32 tensor; otherwise it is a Python float. The value returned here is exactly what HF reports.
   */
  private lrOf(st: ParamState): number {
    const rel = this.relStepSize(st.step);
    if (!this.scaleParameter) return rel;
    const rms = st.rms.dataSync()[0]!;
    return rms > f32(this.eps[1]) ? f32(rms * f32(rel)) : this.eps[1] * rel;
  }

  /**
   * This step's lr and weight-decay factor (-weightDecay · lr) for a parameter of RMS `rms` (float32), rounded as HF
   * computes them: float32 when the parameter scale is the RMS tensor, float64 otherwise (see lrOf).
   */
  private stepLr(rms: number, rel: number): { lr: number; decay?: number } {
    const [, eps2] = this.eps;
    const wd = this.weightDecay;
    if (!this.scaleParameter) return { lr: f32(rel), decay: wd !== 0 ? f32(-wd * rel) : undefined };
    const useRms = rms > f32(eps2);
    const lr = useRms ? f32(rms * f32(rel)) : f32(eps2 * rel);
    if (wd === 0) return { lr };
    return { lr, decay: useRms ? f32(lr * f32(-wd)) : f32(-wd * (eps2 * rel)) };
  }

  /** The learning rate used at the last step of the first parameter this optimizer updated (HF's AdafactorSchedule). */
  get lastLr(): number | undefined {
    for (const st of this.state.values()) {
      if (st.step > 0) return this.lrOf(st);
    }
    return undefined;
  }

  /** The learning rate used at the last step of one variable, or undefined if it has never been updated. */
  lastLrFor(variableName: string): number | undefined {
    const st = this.state.get(variableName);
    return st !== undefined && st.step > 0 ? this.lrOf(st) : undefined;
  }

  /** Step count of one variable (HF's `state["step"]`). */
  stepOf(variableName: string): number {
    return this.state.get(variableName)?.step ?? 0;
  }

  applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    for (const [name, variable, gradient] of gradientPairs(variableGradients, 'Adafactor')) this.updateOne(name, variable, gradient);
    this.incrementIterations();
  }

  private initState(name: string, shape: number[]): ParamState {
    const zeros = (s: number[]) => tf.tidy(() => tf.zeros(s, 'float32').variable(false));
    const st: ParamState = { step: 0, rms: zeros([]) };
    if (this.beta1 !== null) st.expAvg = zeros(shape);
    if (shape.length >= 2) {
      st.expAvgSqRow = zeros(shape.slice(0, -1));
      st.expAvgSqCol = zeros([...shape.slice(0, -2), shape[shape.length - 1]!]);
    } else {
      st.expAvgSq = zeros(shape);
    }
    this.state.set(name, st);
    return st;
  }

  private updateOne(name: string, variable: tf.Variable, gradient: tf.Tensor): void {
    const shape = variable.shape;
    if (!tf.util.arraysEqual(gradient.shape, shape)) {
      throw new Error(`Adafactor: gradient of "${name}" has shape [${gradient.shape}] but the variable has [${shape}]`);
    }
    const factored = shape.length >= 2;
    let st = this.state.get(name);
    if (st === undefined) {
      st = this.initState(name, shape);
    } else if ((st.expAvgSqRow !== undefined) !== factored || (this.beta1 !== null) !== (st.expAvg !== undefined)) {
      throw new Error(`Adafactor: the saved state of "${name}" does not fit a variable of shape [${shape}]`);
    }
    const s = st;
    s.step += 1;
    const step = s.step;
    const rel = this.relStepSize(step);
    const [eps1, eps2] = this.eps;
    const sqrtNumel = f32(Math.sqrt(variable.size));
    const beta2t = 1.0 - Math.pow(step, this.decayRate);

    // cpu and wasm: one in-place pass per stage over parameter, state and gradient (see engine/kernels/adafactor_step.ts).
    const fused = fusedAdafactorStep(
      { param: variable, rms: s.rms, row: s.expAvgSqRow, col: s.expAvgSqCol, full: s.expAvgSq, expAvg: s.expAvg },
      gradient,
      {
        eps1: f32(eps1),
        keep: f32(beta2t),
        take: f32(1.0 - beta2t),
        clipThreshold: this.clipThreshold,
        beta1: this.beta1 === null ? undefined : [f32(this.beta1), f32(1 - this.beta1)],
        lrFor: (rms) => this.stepLr(rms, rel),
      },
      this.inPlaceParameters,
    );
    if (fused) return;

    tf.tidy(() => {
      const g = gradient.dtype === 'float32' ? gradient : tf.cast(gradient, 'float32');
      const p = variable as tf.Tensor;
      const rmsOf = (x: tf.Tensor) => tf.div(tf.sqrt(tf.sum(tf.square(x))), sqrtNumel);

      const rms = rmsOf(p);
      s.rms.assign(rms);

      // lr, and the weight-decay factor -weightDecay * lr, with HF's float32/float64 split (see lrOf).
      let lr: tf.Tensor;
      let decay: tf.Tensor | undefined;
      if (this.scaleParameter) {
        const useRms = tf.greater(rms, tf.scalar(eps2));
        lr = tf.where(useRms, tf.mul(rms, tf.scalar(f32(rel))), tf.scalar(f32(eps2 * rel)));
        if (this.weightDecay !== 0) {
          decay = tf.where(useRms, tf.mul(lr, tf.scalar(f32(-this.weightDecay))), tf.scalar(f32(-this.weightDecay * (eps2 * rel))));
        }
      } else {
        lr = tf.scalar(f32(rel));
        if (this.weightDecay !== 0) decay = tf.scalar(f32(-this.weightDecay * rel));
      }

      const sq = tf.add(tf.square(g), tf.scalar(f32(eps1)));
      const keep = tf.scalar(f32(beta2t));
      const take = tf.scalar(f32(1.0 - beta2t));
      const rsqrt = (x: tf.Tensor) => tf.div(tf.scalar(1), tf.sqrt(x));
      const mean = (x: tf.Tensor, axis: number) => tf.div(tf.sum(x, axis), tf.scalar(x.shape[axis]!));
      let update: tf.Tensor;
      if (factored) {
        const rank = shape.length;
        const row = tf.add(tf.mul(s.expAvgSqRow!, keep), tf.mul(mean(sq, rank - 1), take));
        const col = tf.add(tf.mul(s.expAvgSqCol!, keep), tf.mul(mean(sq, rank - 2), take));
        s.expAvgSqRow!.assign(row);
        s.expAvgSqCol!.assign(col);
        const rowMean = tf.expandDims(mean(row, rank - 2), rank - 2);
        const rFactor = tf.expandDims(rsqrt(tf.div(row, rowMean)), rank - 1);
        const cFactor = tf.expandDims(rsqrt(col), rank - 2);
        update = tf.mul(tf.mul(rFactor, cFactor), g);
      } else {
        const v = tf.add(tf.mul(s.expAvgSq!, keep), tf.mul(sq, take));
        s.expAvgSq!.assign(v);
        update = tf.mul(rsqrt(v), g);
      }
      const clip = tf.maximum(tf.div(rmsOf(update), tf.scalar(f32(this.clipThreshold))), tf.scalar(1));
      update = tf.mul(tf.div(update, clip), lr);

      if (this.beta1 !== null) {
        const m = tf.add(tf.mul(s.expAvg!, tf.scalar(f32(this.beta1))), tf.mul(update, tf.scalar(f32(1 - this.beta1))));
        s.expAvg!.assign(m);
        update = m;
      }
      let next = p;
      if (decay !== undefined) next = tf.add(next, tf.mul(next, decay));
      variable.assign(tf.sub(next, update));
    });
  }

  override dispose(): void {
    for (const st of this.state.values()) disposeState(st);
    this.state.clear();
  }

  /**
   * The optimizer state as new tensors the caller owns: `iter`, then per variable (in first-update order)
   * `<name>/step`, `<name>/rms` and the moments (`exp_avg`, `exp_avg_sq_row` + `exp_avg_sq_col` or `exp_avg_sq`).
   */
  override async getWeights(): Promise<NamedTensor[]> {
    const out: NamedTensor[] = [await this.saveIterations()];
    for (const [name, st] of this.state) {
      out.push({ name: `${name}/step`, tensor: tf.scalar(st.step, 'int32') });
      out.push({ name: `${name}/rms`, tensor: st.rms.clone() });
      if (st.expAvg) out.push({ name: `${name}/exp_avg`, tensor: st.expAvg.clone() });
      if (st.expAvgSqRow) out.push({ name: `${name}/exp_avg_sq_row`, tensor: st.expAvgSqRow.clone() });
      if (st.expAvgSqCol) out.push({ name: `${name}/exp_avg_sq_col`, tensor: st.expAvgSqCol.clone() });
      if (st.expAvgSq) out.push({ name: `${name}/exp_avg_sq`, tensor: st.expAvgSq.clone() });
    }
    return out;
  }

  /** Replaces the whole state with one `getWeights` returned (the tensors are copied; the caller keeps its own). */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const groups = groupState(weightValues, STATE_KEYS, 'Adafactor');
    const next = new Map<string, ParamState>();
    try {
      for (const [name, g] of groups) {
        const need = (key: StateKey): tf.Tensor => {
          const t = g.get(key);
          if (t === undefined) throw new FormatError(`Adafactor state: "${name}/${key}" is missing`);
          return t;
        };
        const step = (await need('step').data())[0] ?? NaN;
        if (!Number.isInteger(step) || step < 0)
          throw new FormatError(`Adafactor state: "${name}/step" is ${step}, expected a whole number ≥ 0`);
        const asVar = (t: tf.Tensor) => tf.tidy(() => tf.variable(t.dtype === 'float32' ? t : tf.cast(t, 'float32'), false));
        const st: ParamState = { step, rms: asVar(need('rms')) };
        next.set(name, st);
        if (this.beta1 !== null) st.expAvg = asVar(need('exp_avg'));
        if (g.has('exp_avg_sq')) {
          st.expAvgSq = asVar(need('exp_avg_sq'));
        } else {
          st.expAvgSqRow = asVar(need('exp_avg_sq_row'));
          st.expAvgSqCol = asVar(need('exp_avg_sq_col'));
        }
      }
    } catch (e) {
      for (const st of next.values()) disposeState(st);
      throw e;
    }
    if (weightValues[0]?.name === 'iter') this.iterations_ = (await weightValues[0].tensor.data())[0]!;
    this.dispose();
    this.state = next;
  }

  getConfig(): tf.serialization.ConfigDict {
    return {
      lr: this.lr,
      eps: [...this.eps],
      clipThreshold: this.clipThreshold,
      decayRate: this.decayRate,
      beta1: this.beta1,
      weightDecay: this.weightDecay,
      scaleParameter: this.scaleParameter,
      relativeStep: this.relativeStep,
      warmupInit: this.warmupInit,
    };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(config as unknown as AdafactorOptions);
  }
}

tf.serialization.registerClass(Adafactor);

function disposeState(st: ParamState): void {
  for (const v of [st.rms, st.expAvg, st.expAvgSqRow, st.expAvgSqCol, st.expAvgSq]) v?.dispose();
}

/**
 * HF's AdafactorSchedule: reports the learning rate Adafactor actually used (for the first parameter it updated),
 * and `initialLr` before the first step.
 */
export class AdafactorSchedule {
  constructor(
    readonly optimizer: Adafactor,
    readonly initialLr = 0.0,
  ) {}

  getLr(): number {
    return this.optimizer.lastLr ?? this.initialLr;
  }
}

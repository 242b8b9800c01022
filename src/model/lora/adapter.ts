/**
 * A LoRA adapter of a T5, as PEFT's `tuners/lora/layer.py` holds one: for each targeted linear layer (HF weight W
 * [out, in]) a tf.Variable lora_A [r, in] and a tf.Variable lora_B [out, r]. The layer then computes
 * x·Wᵀ + (alpha/r)·dropout(x)·Aᵀ·Bᵀ (lora_math.ts); W stays the model's own variable, frozen or not as the caller
 * chooses by the variables it differentiates.
 */
import { tf } from '../../tf.js';
import { UsageError } from '../../errors.js';
import type { T5Parameters } from '../parameters.js';
import { LoraConfig, moduleOf } from './config.js';

/** One targeted layer's low-rank pair and what its LoRA linear needs besides. */
export interface LoraTarget {
  /** lora_A [r, in] */
  readonly A: tf.Variable;
  /** lora_B [out, r] */
  readonly B: tf.Variable;
  readonly scaling: number;
  readonly dropout: number;
}

export interface LoraAdapterOptions {
  /** Seed of lora_A's initialisation (each layer draws from the next seed). */
  seed?: number;
  /** The base model the adapter is trained on, as adapter_config.json names it (PEFT's base_model_name_or_path, revision). */
  base?: AdapterBase;
}

/** The base model of an adapter: a Hub id or a folder, and the Hub revision; null when unknown. */
export interface AdapterBase {
  nameOrPath: string | null;
  revision: string | null;
}

/** The prefix of every tensor name in PEFT's adapter_model.safetensors (the PeftModel's base model's own model). */
export const PEFT_KEY_PREFIX = 'base_model.model.';

/** A LoRA tensor's name in PEFT's adapter_model.safetensors: `base_model.model.<module>.lora_A.weight`. */
export function peftKey(weightName: string, which: 'lora_A' | 'lora_B'): string {
  return `${PEFT_KEY_PREFIX}${moduleOf(weightName)}.${which}.weight`;
}

let nextAdapterId = 0;

/**
 * A fresh adapter starts as PEFT's `init_lora_weights=True` does: lora_A Kaiming-uniform (torch's
 * `kaiming_uniform_(a=√5)` for fan_in = in, i.e. U(-1/√in, 1/√in)), lora_B zero, so the model computes what its base
 * computes until B is trained.
 */
export class LoraAdapter {
  readonly config: LoraConfig;
  /** `target_modules` as adapter_config.json records them (what 'all-linear' expanded to, if that was given). */
  readonly savedTargetModules: readonly string[];
  readonly base: AdapterBase;
  /** By the targeted layer's HF weight name, in parameter order. */
  private readonly targets = new Map<string, LoraTarget>();

  constructor(base: { readonly layout: T5Parameters }, config: LoraConfig = new LoraConfig(), options: LoraAdapterOptions = {}) {
    this.config = config;
    this.savedTargetModules = config.savedTargetModules(base.layout);
    this.base = { nameOrPath: options.base?.nameOrPath ?? null, revision: options.base?.revision ?? null };
    const shapes = new Map(base.layout.all.map((p) => [p.name, p.shape]));
    const scope = `t5cls_lora_${nextAdapterId++}`;
    let seed = options.seed ?? 0;
    for (const weight of config.targetWeights(base.layout)) {
      const [out, fanIn] = shapes.get(weight)! as [number, number];
      const bound = kaimingUniformBound(fanIn);
      const A = tf.tidy(() =>
        tf.variable(tf.randomUniform([config.r, fanIn], -bound, bound, 'float32', seed++), true, `${scope}/${peftKey(weight, 'lora_A')}`),
      );
      const B = tf.tidy(() => tf.variable(tf.zeros([out, config.r]), true, `${scope}/${peftKey(weight, 'lora_B')}`));
      this.targets.set(weight, { A, B, scaling: config.scaling, dropout: config.dropout });
    }
  }

  /** The pair of the layer whose HF weight is `weightName`, or undefined when the adapter does not target it. */
  target(weightName: string): LoraTarget | undefined {
    return this.targets.get(weightName);
  }

  /** The HF weight names of the targeted layers, in parameter order. */
  targetWeights(): string[] {
    return [...this.targets.keys()];
  }

  /**
   * Every LoRA tensor by its name in PEFT's adapter_model.safetensors, in PEFT's `named_parameters()` order (layer by
   * layer, lora_A before lora_B).
   */
  namedVariables(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const [weight, { A, B }] of this.targets) {
      out.set(peftKey(weight, 'lora_A'), A);
      out.set(peftKey(weight, 'lora_B'), B);
    }
    return out;
  }

  /** The variables to train (give them to `tf.variableGrads` and the optimizer), in PEFT's order. */
  trainableVariables(): tf.Variable[] {
    return [...this.namedVariables().values()];
  }

  /** How many numbers the adapter trains (PEFT's "trainable params"). */
  get parameterCount(): number {
    let n = 0;
    for (const { A, B } of this.targets.values()) n += A.size + B.size;
    return n;
  }

  /** Refuses a model whose weights do not have the shapes this adapter was made for. */
  assertFits(shapeOf: (weightName: string) => readonly number[] | undefined): void {
    for (const [weight, { A, B }] of this.targets) {
      const shape = shapeOf(weight);
      const expected = [B.shape[0]!, A.shape[1]!];
      if (!shape || !tf.util.arraysEqual([...shape], expected)) {
        throw new UsageError(`LoRA adapter targets ${weight} [${expected}], but the model's is ${shape ? `[${shape}]` : 'missing'}`);
      }
    }
  }

  dispose(): void {
    for (const { A, B } of this.targets.values()) tf.dispose([A, B]);
    this.targets.clear();
  }
}

/** The bound of torch's `kaiming_uniform_(w, a=√5)` for `fanIn` inputs, computed as torch computes it. */
export function kaimingUniformBound(fanIn: number): number {
  const a = Math.sqrt(5);
  const gain = Math.sqrt(2 / (1 + a * a));
  return Math.sqrt(3) * (gain / Math.sqrt(fanIn));
}

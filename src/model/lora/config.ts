/**
 * A LoRA adapter's hyperparameters as PEFT's `LoraConfig` names them (r, lora_alpha, lora_dropout, target_modules),
 * and which of T5's linear layers its target modules select, by PEFT's matching rule.
 */
import { FormatError, UsageError } from '../../errors.js';
import { attentionWeights, feedForwardWeights, type T5Parameters } from '../parameters.js';

/** PEFT's target modules for T5 when none are given (`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING["t5"]`). */
export const T5_DEFAULT_TARGETS: readonly string[] = ['q', 'v'];

/** PEFT's shorthand for every linear layer but the output layer (for T5: every linear of the blocks, no LM head). */
export const ALL_LINEAR = 'all-linear';

export interface LoraConfigOptions {
  /** The rank of the update (PEFT `r`, default 8). */
  r?: number;
  /** PEFT `lora_alpha` (default 8): the update is scaled by alpha / r. */
  alpha?: number;
  /** PEFT `lora_dropout` (default 0): dropout on the adapter's input, in training only. */
  dropout?: number;
  /**
   * PEFT `target_modules`: module names, each selecting the linear layers whose HF module name is it or ends in
   * `.name` (`q`, `EncDecAttention.q`, `wi_0`, …), or 'all-linear'. Default q, v (PEFT's for T5).
   */
  targetModules?: readonly string[] | typeof ALL_LINEAR;
}

export class LoraConfig {
  readonly r: number;
  readonly alpha: number;
  readonly dropout: number;
  readonly targetModules: readonly string[] | typeof ALL_LINEAR;

  constructor(options: LoraConfigOptions = {}) {
    this.r = options.r ?? 8;
    this.alpha = options.alpha ?? 8;
    this.dropout = options.dropout ?? 0;
    const targets = options.targetModules ?? T5_DEFAULT_TARGETS;
    if (!Number.isInteger(this.r) || this.r < 1) throw new UsageError(`LoRA r must be a whole number ≥ 1, got ${this.r}`);
    if (!Number.isFinite(this.alpha)) throw new UsageError(`LoRA alpha must be a finite number, got ${this.alpha}`);
    if (!(this.dropout >= 0 && this.dropout < 1)) throw new UsageError(`LoRA dropout must be in [0, 1), got ${this.dropout}`);
    if (targets !== ALL_LINEAR && (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => typeof t !== 'string' || !t))) {
      throw new UsageError(
        `LoRA target modules must be '${ALL_LINEAR}' or a non-empty list of module names, got ${JSON.stringify(targets)}`,
      );
    }
    this.targetModules = targets === ALL_LINEAR ? ALL_LINEAR : [...new Set(targets)];
  }

  /** lora_alpha / r: the factor of the low-rank update (PEFT's `scaling` without rsLoRA). */
  get scaling(): number {
    return this.alpha / this.r;
  }

  /**
   * The HF weight names (`….SelfAttention.q.weight`) of the linear layers of `layout` that the target modules
   * select, in parameter order. A target that selects none of them is refused (a UsageError, or a FormatError
   * naming `source` and the field when the config came from a file).
   */
  targetWeights(layout: T5Parameters, source?: string): string[] {
    const linears = blockLinearWeights(layout);
    if (this.targetModules === ALL_LINEAR) return linears;
    const selected = new Set<string>();
    for (const target of this.targetModules) {
      const hits = linears.filter((weight) => moduleMatches(moduleOf(weight), target));
      if (hits.length === 0) {
        const message = `target module "${target}" selects none of this T5's linear layers (${linearNames(linears).join(', ')})`;
        throw source === undefined ? new UsageError(`LoRA ${message}`) : new FormatError(`${source}: target_modules: ${message}`);
      }
      for (const weight of hits) selected.add(weight);
    }
    return linears.filter((weight) => selected.has(weight));
  }

  /** `target_modules` as adapter_config.json records it: the names given, or what 'all-linear' expands to (as PEFT saves it). */
  savedTargetModules(layout: T5Parameters): string[] {
    return this.targetModules === ALL_LINEAR ? linearNames(blockLinearWeights(layout)) : [...this.targetModules];
  }
}

/** Every linear layer of T5's blocks by its HF weight name, in parameter order; the LM head is not one of them. */
export function blockLinearWeights(layout: T5Parameters): string[] {
  const linears = new Set<string>();
  for (const block of layout.encoder.blocks) {
    for (const w of [...attentionWeights(block.selfAttention), ...feedForwardWeights(block.feedForward)]) linears.add(w);
  }
  for (const block of layout.decoder.blocks) {
    const { selfAttention, crossAttention, feedForward } = block;
    for (const w of [...attentionWeights(selfAttention), ...attentionWeights(crossAttention), ...feedForwardWeights(feedForward)]) {
      linears.add(w);
    }
  }
  return layout.all.map((p) => p.name).filter((name) => linears.has(name));
}

/** The module a weight belongs to: `encoder.block.0.layer.0.SelfAttention.q` of `….q.weight`. */
export function moduleOf(weightName: string): string {
  return weightName.replace(/\.weight$/, '');
}

/** PEFT's rule for a listed target module: the module's name is the target, or ends in `.target`. */
function moduleMatches(module: string, target: string): boolean {
  return module === target || module.endsWith(`.${target}`);
}

/** The distinct last components of the linear layers' module names (q, k, v, o, wi, wo …), in order. */
function linearNames(weights: string[]): string[] {
  return [...new Set(weights.map((w) => moduleOf(w).split('.').pop()!))];
}

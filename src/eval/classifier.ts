/**
 * A saved checkpoint as a text classifier: `Classifier.fromPretrained(dir)` reads the model, its tokenizer and
 * t5cls.json (input prefix, classes map, maximum input length), and `predict(texts)` returns a class per text.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { hasTokenizerFiles, T5Tokenizer } from '../tokenizer/index.js';
import { ADAPTER_CONFIG_FILE, fromPretrainedWithAdapter, isAdapterFolder, readAdapterBase } from '../model/lora/index.js';
import { encodeClassNames, encodeInput } from '../data/batches.js';
import { readClassesMap } from '../data/index.js';
import { predictGenerate, predictRank, type ProgressFn } from './decoding.js';
import { INVALID_PREDICTION } from './metrics.js';
import { CHECKPOINT_META, readCheckpointMeta, type CheckpointMeta } from '../checkpoint_meta.js';
import { UsageError } from '../errors.js';

export type DecodeMode = 'rank' | 'generate';

export interface ClassifierOptions {
  /**
   * Class names by id: a {"name": id} map, the names in id order, or the path of a classes map file. Required when
   * the folder has no t5cls.json; overrides it otherwise.
   */
  classesMap?: Record<string, number> | string[] | string;
  /** Text put before every input (default: t5cls.json's, else none). */
  prefixText?: string;
  /** Inputs are truncated to this many tokens (default: t5cls.json's, else 512). */
  maxSourceLength?: number;
  /** A tokenizer folder (with spiece.model) or a loaded tokenizer; default: the checkpoint folder's. */
  tokenizer?: string | T5Tokenizer;
  /** Receives warnings, e.g. tensors in the checkpoint that the model does not use. */
  onWarning?: (message: string) => void;
  /**
   * When the folder is a PEFT LoRA adapter: its base model's folder (default: the folder its adapter_config.json
   * names as base_model_name_or_path). The adapter is merged into the base's weights.
   */
  baseModel?: string;
}

export interface PredictOptions {
  /** rank (default): the most likely class name, with every class's probability; generate: greedy decoding. */
  decode?: DecodeMode;
  /** Inputs per model call (default 64). */
  batchSize?: number;
  /** Called after every batch with the number of texts done. */
  onProgress?: ProgressFn;
}

export interface Prediction {
  /** The input text. */
  text: string;
  /** The predicted class name; null when generated text is no class name. */
  label: string | null;
  /** The predicted class id; -1 when generated text is no class name. */
  labelId: number;
  /** Rank decoding: every class's probability by name (softmax over the class sequences' log-likelihoods). */
  probabilities?: Record<string, number>;
  /** Generate decoding: the generated text. */
  generated?: string;
}

const DEFAULT_MAX_SOURCE_LENGTH = 512;

export class Classifier {
  /** Class names by id. */
  readonly classNames: string[];
  readonly prefixText: string;
  readonly maxSourceLength: number;
  readonly model: T5ForConditionalGeneration;
  readonly tokenizer: T5Tokenizer;
  /** The checkpoint's t5cls.json, when it has one. */
  readonly meta: CheckpointMeta | undefined;
  private readonly classTokens: number[][];
  private disposed = false;

  constructor(
    model: T5ForConditionalGeneration,
    tokenizer: T5Tokenizer,
    classNames: string[],
    opts: { prefixText?: string; maxSourceLength?: number; meta?: CheckpointMeta } = {},
  ) {
    if (!classNames.length) throw new UsageError('a classifier needs at least one class');
    this.model = model;
    this.tokenizer = tokenizer;
    this.classNames = [...classNames];
    this.prefixText = opts.prefixText ?? '';
    this.maxSourceLength = opts.maxSourceLength ?? DEFAULT_MAX_SOURCE_LENGTH;
    this.meta = opts.meta;
    this.classTokens = encodeClassNames(tokenizer, this.classNames);
  }

  /** Loads a checkpoint folder (an HF model folder, normally with t5cls.json and the tokenizer files). */
  static async fromPretrained(dir: string, opts: ClassifierOptions = {}): Promise<Classifier> {
    const folder = path.resolve(dir);
    if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) throw new UsageError(`checkpoint ${folder}: no such folder`);
    const meta = readCheckpointMeta(folder);
    let classNames: string[];
    if (opts.classesMap !== undefined) {
      classNames = classNamesOf(opts.classesMap);
    } else if (meta) {
      classNames = classNamesOf(meta.classesMap, path.join(folder, CHECKPOINT_META));
    } else {
      throw missingClassesError(folder);
    }
    const baseModel = isAdapterFolder(folder) ? adapterBaseFolder(folder, opts.baseModel) : undefined;
    if (!baseModel && !fs.existsSync(path.join(folder, 'config.json')))
      throw new UsageError(`checkpoint ${folder}: no config.json (expected a model folder saved by t5cls or Hugging Face)`);
    const tokenizerDir = opts.tokenizer ?? (baseModel && !hasTokenizerFiles(folder) ? baseModel : folder);
    const tokenizer = tokenizerDir instanceof T5Tokenizer ? tokenizerDir : await T5Tokenizer.fromPretrained(path.resolve(tokenizerDir));
    const model = baseModel
      ? fromPretrainedWithAdapter(baseModel, folder, { merge: true, onWarning: opts.onWarning })
      : T5ForConditionalGeneration.fromPretrained(folder, { onWarning: opts.onWarning });
    return new Classifier(model, tokenizer, classNames, {
      prefixText: opts.prefixText ?? meta?.prefixText,
      maxSourceLength: opts.maxSourceLength ?? meta?.maxSourceLength,
      meta,
    });
  }

  /** Token ids the model sees for a text: prefix + text, truncated to maxSourceLength (the EOS kept). */
  encode(text: string): number[] {
    return encodeInput(this.tokenizer, text, this.prefixText, this.maxSourceLength);
  }

  predict(texts: string[], opts: PredictOptions = {}): Prediction[] {
    if (this.disposed) throw new Error('Classifier.predict: the classifier has been disposed');
    const decode = opts.decode ?? 'rank';
    const batchSize = opts.batchSize ?? 64;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError(`batch size must be a whole number >= 1, got ${batchSize}`);
    if (!texts.length) return [];
    texts.forEach((t, i) => {
      if (typeof t !== 'string') throw new UsageError(`text ${i + 1} is ${t === null ? 'null' : typeof t}, expected a string`);
    });
    const inputs = texts.map((t) => this.encode(t));
    if (decode === 'rank') {
      const preds = predictRank(this.model, inputs, this.classNames, this.classTokens, batchSize, opts.onProgress);
      return texts.map((text, i) => ({
        text,
        label: this.classNames[preds.labels[i]!]!,
        labelId: preds.labels[i]!,
        probabilities: Object.fromEntries(this.classNames.map((name, c) => [name, preds.probabilities![i]![c]!])),
      }));
    }
    if (decode !== 'generate') throw new UsageError(`decode must be "rank" or "generate", got ${JSON.stringify(decode)}`);
    const preds = predictGenerate(this.model, this.tokenizer, inputs, this.classNames, this.classTokens, batchSize, opts.onProgress);
    return texts.map((text, i) => {
      const id = preds.labels[i]!;
      return { text, label: id === INVALID_PREDICTION ? null : this.classNames[id]!, labelId: id, generated: preds.texts[i]! };
    });
  }

  /** Frees the model's weights; the classifier cannot predict afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.model.dispose();
  }
}

/** The error for a model folder without t5cls.json when no classes map is given. */
export function missingClassesError(folder: string): UsageError {
  return new UsageError(
    `checkpoint ${folder} has no ${CHECKPOINT_META}, so its classes are unknown; pass the classes map (--classes-map FILE, or ` +
      `classesMap in the options)`,
  );
}

/** Class names in id order from a {"name": id} map, a list of names, or a classes map file. */
function classNamesOf(map: Record<string, number> | string[] | string, source = 'classesMap'): string[] {
  if (typeof map === 'string') return classNamesOf(readClassesMap(path.resolve(map)), map);
  if (Array.isArray(map)) {
    if (!map.length) throw new UsageError(`${source}: no classes`);
    const seen = new Set<string>();
    for (const name of map) {
      if (typeof name !== 'string' || !name.trim())
        throw new UsageError(`${source}: class names must be non-empty strings, got ${JSON.stringify(name)}`);
      if (seen.has(name)) throw new UsageError(`${source}: class ${JSON.stringify(name)} is listed twice`);
      seen.add(name);
    }
    return [...map];
  }
  if (map === null || typeof map !== 'object') throw new UsageError(`${source}: expected a classes map {"class name": id, …}`);
  const entries = Object.entries(map);
  if (!entries.length) throw new UsageError(`${source}: the classes map is empty`);
  const names = new Array<string>(entries.length);
  for (const [name, id] of entries) {
    if (!Number.isInteger(id) || id < 0 || id >= entries.length || names[id] !== undefined) {
      throw new UsageError(
        `${source}: class ${JSON.stringify(name)} has id ${JSON.stringify(id)}; ids must be 0..${entries.length - 1}, each once`,
      );
    }
    names[id] = name;
  }
  return names;
}

/** The base model folder of an adapter folder: the one given, else the folder its adapter_config.json names. */
function adapterBaseFolder(adapterDir: string, given: string | undefined): string {
  if (given !== undefined) return path.resolve(given);
  const file = path.join(adapterDir, ADAPTER_CONFIG_FILE);
  const base = readAdapterBase(file).nameOrPath;
  if (base !== null && fs.existsSync(path.join(base, 'config.json'))) return base;
  throw new UsageError(
    `${file}: base_model_name_or_path is ${JSON.stringify(base)}, not a model folder here: pass the base model's folder as baseModel`,
  );
}

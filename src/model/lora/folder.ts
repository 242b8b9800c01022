/**
 * PEFT's adapter folder both ways: adapter_config.json and adapter_model.safetensors (tensors named
 * `base_model.model.<module>.lora_A.weight` [r, in] and `….lora_B.weight` [out, r]), as `PeftModel.save_pretrained`
 * writes them and `PeftModel.from_pretrained` reads them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../../tf.js';
import { FormatError, UsageError } from '../../errors.js';
import { writeFileAtomic, writeFolderAtomic } from '../../fsutil.js';
import { readSafetensorsFile, saveSafetensors } from '../../safetensors.js';
import type { T5ForConditionalGeneration } from '../modeling_t5.js';
import type { T5Parameters } from '../parameters.js';
import { LoraAdapter, type AdapterBase } from './adapter.js';
import { ADAPTER_CONFIG_FILE, adapterConfigText, readAdapterBase, readAdapterConfig, SEQ_2_SEQ_LM } from './peft_config.js';

export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

export interface SaveAdapterOptions {
  /** What adapter_config.json records as `base_model_name_or_path` (a hub id or a folder) (default: the adapter's own). */
  baseModelNameOrPath?: string;
  /**
   * `task_type` (default SEQ_2_SEQ_LM, what PEFT writes for a T5). null suits peft 0.21 with transformers 5.x, whose
   * PeftModelForSeq2SeqLM calls a method transformers 5.x removed: PeftModel.from_pretrained then fails on SEQ_2_SEQ_LM.
   */
  taskType?: typeof SEQ_2_SEQ_LM | null;
}

/**
 * Writes `adapter` as a PEFT adapter folder, all at once (a reader never sees half of it). An existing adapter folder
 * at `dir` is replaced; any other non-empty folder is refused.
 */
export async function saveAdapter(dir: string, adapter: LoraAdapter, options: SaveAdapterOptions = {}): Promise<void> {
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0 && !fs.existsSync(path.join(dir, ADAPTER_CONFIG_FILE))) {
    throw new UsageError(`${dir}: not empty and not an adapter folder (no ${ADAPTER_CONFIG_FILE}): not replacing it`);
  }
  await writeFolderAtomic(dir, (tmp) => writeAdapterFiles(tmp, adapter, options), { replace: true });
}

/** adapter_model.safetensors and adapter_config.json into `dir` (each file written atomically). */
export function writeAdapterFiles(dir: string, adapter: LoraAdapter, options: SaveAdapterOptions = {}): void {
  saveSafetensors(path.join(dir, ADAPTER_WEIGHTS_FILE), adapter.namedVariables(), { format: 'pt' });
  const base = options.baseModelNameOrPath ?? adapter.base.nameOrPath;
  const taskType = options.taskType === undefined ? SEQ_2_SEQ_LM : options.taskType;
  writeFileAtomic(path.join(dir, ADAPTER_CONFIG_FILE), adapterConfigText(adapter, base, taskType, adapter.base.revision));
}

/** Whether `dir` is an adapter folder (it holds adapter_config.json). */
export function isAdapterFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, ADAPTER_CONFIG_FILE));
}

/**
 * Reads a PEFT LoRA adapter folder for `model` and, unless `attach` is false, attaches it. Whatever t5cls does not
 * implement (see peft_config.ts), a target outside T5's linear layers, a tensor of no targeted layer, a missing
 * tensor or a shape that does not fit is refused in one line naming the file and the field or tensor.
 */
export function loadAdapter(
  dir: string,
  model: Pick<T5ForConditionalGeneration, 'layout' | 'attachAdapter'>,
  options: {
    attach?: boolean;
    /** The base the adapter will name when saved (default: the one its config names). */
    base?: AdapterBase;
  } = {},
): LoraAdapter {
  const adapter = readAdapter(dir, model, options);
  if (options.attach === false) return adapter;
  try {
    model.attachAdapter(adapter);
    return adapter;
  } catch (e) {
    adapter.dispose();
    throw e;
  }
}

/** `loadAdapter` without attaching: the adapter of a folder for a T5 of `layout`, checked the same way. */
export function readAdapter(dir: string, model: { readonly layout: T5Parameters }, options: { base?: AdapterBase } = {}): LoraAdapter {
  const configFile = path.join(dir, ADAPTER_CONFIG_FILE);
  if (!fs.existsSync(configFile)) throw new FormatError(`${dir}: no ${ADAPTER_CONFIG_FILE} (not a PEFT adapter folder)`);
  const config = readAdapterConfig(configFile);
  config.targetWeights(model.layout, configFile);
  const weightsFile = path.join(dir, ADAPTER_WEIGHTS_FILE);
  if (!fs.existsSync(weightsFile)) {
    const pickle = fs.existsSync(path.join(dir, 'adapter_model.bin'));
    throw new FormatError(
      `${dir}: no ${ADAPTER_WEIGHTS_FILE}${pickle ? ' (adapter_model.bin, a pickle, is not read: save with safe_serialization=True)' : ''}`,
    );
  }
  const { tensors } = readSafetensorsFile(weightsFile);
  const adapter = new LoraAdapter(model, config, { base: options.base ?? readAdapterBase(configFile) });
  try {
    const expected = adapter.namedVariables();
    for (const [key, t] of tensors) {
      const variable = expected.get(key);
      if (!variable)
        throw new FormatError(`${weightsFile}: tensor "${key}" is no LoRA weight of a layer that ${ADAPTER_CONFIG_FILE} targets`);
      if (!(t.data instanceof Float32Array)) throw new FormatError(`${weightsFile}: tensor "${key}" is ${t.dtype}, not floating point`);
      if (!tf.util.arraysEqual(t.shape, variable.shape)) {
        throw new FormatError(
          `${weightsFile}: tensor "${key}" has shape [${t.shape}], but r ${config.r} and the model's layer need [${variable.shape}]`,
        );
      }
    }
    for (const [key, variable] of expected) {
      const t = tensors.get(key);
      if (!t) throw new FormatError(`${weightsFile}: no tensor "${key}" (${ADAPTER_CONFIG_FILE} targets its layer)`);
      tf.tidy(() => variable.assign(tf.tensor(t.data, t.shape, 'float32')));
    }
    return adapter;
  } catch (e) {
    adapter.dispose();
    throw e;
  }
}

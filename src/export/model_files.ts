/**
 * The JSON files of an export folder: what transformers.js reads (config.json, generation_config.json,
 * tokenizer_config.json) and t5cls.json, what a page needs to turn generated text into a class.
 */
import type { T5Config } from '../model/config.js';
import { OPSET } from './onnx_file.js';

export const EXPORT_META = 't5cls.json';
export const ENCODER_FILE = 'onnx/encoder_model.onnx';
export const DECODER_FILE = 'onnx/decoder_model_merged.onnx';
/** The 8-bit variants, under the names transformers.js loads for `dtype: 'q8'` (its default in browsers). */
export const ENCODER_Q8_FILE = 'onnx/encoder_model_quantized.onnx';
export const DECODER_Q8_FILE = 'onnx/decoder_model_merged_quantized.onnx';

export interface ExportMeta {
  format: 't5cls-export';
  version: 1;
  /** Text put before every input (transformers.js's text2text-generation pipeline adds config.json's `prefix` itself). */
  prefix: string;
  /** Class names by id: generated text that equals one of them is that class. */
  classes: string[];
  /** Inputs were truncated to this many tokens in training and by `t5cls predict`. */
  maxSourceLength: number;
  /** New tokens `t5cls predict --decode generate` allows: the longest class name's, end of sequence included. */
  maxNewTokens: number;
  /** The checkpoint folder's name, and the model it was fine-tuned from when known. */
  checkpoint: string;
  baseModel?: string;
  /** The ONNX files; `q8`: the 8-bit variants, when exported with --quantize. */
  onnx: { opset: number; encoder: string; decoder: string; q8?: { encoder: string; decoder: string } };
  createdAt: string;
}

/**
 * config.json: the checkpoint's T5 config, with `prefix` (which transformers.js's text2text-generation pipeline puts
 * before every input) and without the original T5's `task_specific_params`, which do not apply to a classifier.
 */
export function exportConfig(config: T5Config, prefix: string, q8: boolean): Record<string, unknown> {
  const out = config.toJSON();
  delete out.task_specific_params;
  out.use_cache = true;
  out.prefix = prefix;
  // transformers.js in a browser (device wasm) loads the 8-bit files (`*_quantized.onnx`) unless told otherwise: so
  // it does when they exist; without them it must take the float32 ones.
  if (!q8) out['transformers.js_config'] = { dtype: 'fp32' };
  return out;
}

/** generation_config.json: start, end and pad tokens, and the classifier's new-token budget. */
export function exportGenerationConfig(config: T5Config, maxNewTokens: number): Record<string, unknown> {
  return {
    decoder_start_token_id: config.decoder_start_token_id,
    eos_token_id: config.eos_token_id,
    pad_token_id: config.pad_token_id,
    max_new_tokens: maxNewTokens,
  };
}

/**
 * tokenizer_config.json: the source's settings (HF's T5 defaults when it has none), the class transformers.js
 * instantiates, and `model_max_length` set to the classifier's input length so that `truncation: true` cuts there.
 */
export function exportTokenizerConfig(source: Record<string, unknown> | undefined, maxSourceLength: number): Record<string, unknown> {
  return {
    eos_token: '</s>',
    pad_token: '<pad>',
    unk_token: '<unk>',
    ...source,
    tokenizer_class: 'T5Tokenizer',
    model_max_length: maxSourceLength,
  };
}

export function exportMeta(fields: Omit<ExportMeta, 'format' | 'version' | 'onnx' | 'createdAt'>, q8: boolean): ExportMeta {
  return {
    format: 't5cls-export',
    version: 1,
    ...fields,
    onnx: {
      opset: OPSET,
      encoder: ENCODER_FILE,
      decoder: DECODER_FILE,
      ...(q8 ? { q8: { encoder: ENCODER_Q8_FILE, decoder: DECODER_Q8_FILE } } : {}),
    },
    createdAt: new Date().toISOString(),
  };
}

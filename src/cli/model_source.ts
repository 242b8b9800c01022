/**
 * The model a training command starts from (`train`, `pretrain`): a random T5 of a named shape or config.json with
 * a given tokenizer (`--init random`), or a pretrained checkpoint (Hub id or folder) with its tokenizer.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelSourceParams } from '../params/model.js';
import { T5Config, NAMED_CONFIGS } from '../model/config.js';
import { readModelConfig } from '../model/pretrained_config.js';
import { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { T5Tokenizer } from '../tokenizer/index.js';
import { UsageError } from '../errors.js';
import { resolveModelDir } from './shared.js';

export interface ModelSource {
  tokenizer: T5Tokenizer;
  config: T5Config;
  modelName: string;
  /** The checkpoint folder; undefined for a random initialisation. */
  modelDir: string | undefined;
}

export async function resolveModelSource(p: ModelSourceParams, say: (line: string) => void): Promise<ModelSource> {
  if (p.init === 'random') {
    const tokenizerDir = p.tokenizer ? path.resolve(p.tokenizer) : await resolveModelDir(p.model, p.revision, say, { tokenizerOnly: true });
    const tokenizer = await T5Tokenizer.fromPretrained(tokenizerDir);
    const vocab = Math.ceil(tokenizer.vocabSize / 128) * 128;
    let config: T5Config;
    let modelName: string;
    if (NAMED_CONFIGS[p.modelConfig]) {
      config = new T5Config({ ...NAMED_CONFIGS[p.modelConfig], vocab_size: vocab }, p.modelConfig);
      modelName = `t5-${p.modelConfig}-scratch`;
    } else {
      const file = path.resolve(p.modelConfig);
      if (!fs.existsSync(file))
        throw new UsageError(
          `--model-config: "${p.modelConfig}" is neither a named shape (${Object.keys(NAMED_CONFIGS).join(', ')}) nor an ` +
            `existing config.json file`,
        );
      config = T5Config.fromFile(file).withFields({ vocab_size: vocab }, p.modelConfig);
      modelName = `${path.basename(path.dirname(file))}-scratch`;
    }
    return { tokenizer, config, modelName, modelDir: undefined };
  }
  const modelDir = await resolveModelDir(p.model, p.revision, say);
  return {
    tokenizer: await T5Tokenizer.fromPretrained(p.tokenizer ? path.resolve(p.tokenizer) : modelDir),
    config: readModelConfig(modelDir),
    modelName: path.basename(p.model.replace(/[/\\]+$/, '')),
    modelDir,
  };
}

/** The model itself, once the backend is up: random from `seed`, or the checkpoint's weights. */
export function createModel(
  p: Pick<ModelSourceParams, 'modelConfig'> & { seed: number },
  config: T5Config,
  modelDir: string | undefined,
  say: (line: string) => void,
): T5ForConditionalGeneration {
  if (modelDir === undefined) {
    say(
      `initialised a random T5 (${p.modelConfig}: d_model ${config.d_model}, ` +
        `${config.num_layers}+${config.num_decoder_layers} layers, vocab ${config.vocab_size})`,
    );
    return new T5ForConditionalGeneration(config, { seed: p.seed });
  }
  return T5ForConditionalGeneration.fromPretrained(modelDir, { onWarning: say, config });
}

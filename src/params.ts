/**
 * Every option of every command, in one zod schema: name, type, default, help text and valid range. The CLI's
 * commander options are generated from it (src/cli/options.ts), `--config params.json` is validated by it, and the
 * README's options table is generated from it.
 */
import { z } from 'zod';

export type CommandName = 'load-dataset' | 'train' | 'pretrain' | 'test' | 'predict' | 'export' | 'doctor' | 'report';

const int = (min: number) => z.coerce.number({ invalid_type_error: 'expected a number' }).int('expected an integer').min(min);
const num = (min: number) => z.coerce.number({ invalid_type_error: 'expected a number' }).finite().min(min);
const str = () => z.string().min(1, 'expected a non-empty value');

export const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;

/** Option name → zod type with its default and help text (`.describe`). */
export const ParamsSchema = z.object({
  // load-dataset
  dataset: str().default('cardiffnlp/tweet_eval').describe('Hugging Face Hub data set id'),
  subset: str().default('emotion').describe('data set config (TweetEval task)'),
  revision: str().default('main').describe('Hub revision (branch, tag or commit) of the data set or model'),
  from: z
    .union([str(), z.array(str()).min(1)])
    .optional()
    .describe(
      'load-dataset: a local TweetEval folder or CSV/TSV/JSONL/JSON file(s) instead of the Hub; pretrain: text files or ' +
        'folders (repeat the flag for several)',
    ),
  textColumn: str().default('text').describe('text column of CSV/TSV/JSONL/JSON sources'),
  labelColumn: str().default('label').describe('label column of CSV/TSV/JSONL/JSON sources (class names or ids)'),
  skipEmptyTexts: z.boolean().default(false).describe('leave out examples with an empty text instead of stopping with an error'),
  out: str()
    .optional()
    .describe(
      "output folder: load-dataset's processed data (default datasets/<dataset>-<subset>_processed); export's model folder " +
        '(default exports/<checkpoint>)',
    ),
  classesMap: str().default('classes_map.json').describe('classes map file {"class name": id}'),
  // model and data
  model: str().default('t5-small').describe('Hub model id (t5-small, google/flan-t5-small, …) or a local model folder'),
  init: z
    .enum(['pretrained', 'random'])
    .default('pretrained')
    .describe("start from the checkpoint's weights or from a random initialisation"),
  modelConfig: str().default('small').describe('with --init random: a config.json file or a named shape (tiny, mini, small, base, large)'),
  tokenizer: str()
    .optional()
    .describe("tokenizer folder with spiece.model or tokenizer.json (export needs tokenizer.json) (default: the model's)"),
  prefixText: z.string().default('tweet_eval emotion sentence: ').describe('text put before every input'),
  dataDir: str().optional().describe('folder with train/validation/test.json (default: where load-dataset wrote)'),
  maxSourceLength: int(2).default(512).describe('inputs are truncated to this many tokens'),
  maxTrainExamples: int(1).optional().describe('use only the first N training examples'),
  maxEvalExamples: int(1).optional().describe('use only the first N validation/test examples'),
  // training
  epochs: int(1).default(10).describe('training epochs'),
  batchSize: int(1).default(16).describe('training batch size'),
  evalBatchSize: int(1).default(64).describe('evaluation batch size'),
  learningRate: num(0)
    .optional()
    .describe('learning rate (default 1e-4 for AdamW, 1e-3 for Adafactor, 1e-2 for Adafactor with --adafactor-scale-parameter)'),
  lrWarmupSteps: int(0).default(0).describe('linear learning-rate warm-up steps, constant afterwards'),
  weightDecay: num(0).default(0).describe('decoupled weight decay'),
  useAdafactor: z.boolean().default(false).describe('train with Adafactor instead of AdamW'),
  useAdafactorSchedule: z
    .boolean()
    .default(false)
    .describe("relative-step Adafactor: the learning rate comes from Adafactor's own schedule"),
  adafactorScaleParameter: z
    .boolean()
    .optional()
    .describe(
      "Adafactor with a fixed --learning-rate: scale each parameter's step by its root mean square (HF scale_parameter), " +
        'as T5 was pretrained (default: on with --init random, where it learns far faster; off from a checkpoint)',
    ),
  useWeightedRandomSampler: z.boolean().default(false).describe('draw training examples with replacement, weighted 1/(class count)'),
  gradientAccumulationSteps: int(1).default(1).describe('batches whose gradients are summed before each optimizer step'),
  earlyStoppingPatience: int(1).optional().describe('stop after N epochs without a better dev macro-F1 (default: off)'),
  seed: int(0).default(42).describe('random seed (initialisation, shuffling, dropout)'),
  maxSteps: int(1).optional().describe('stop after this many optimizer steps'),
  saveWeightsPath: str().default('weights').describe('folder for checkpoints'),
  logsDir: str().default('logs').describe('folder for text logs'),
  runsDir: str().default('runs').describe('folder for TensorBoard event files'),
  saveEverySteps: int(1)
    .optional()
    .describe('also write the resumable training state every N optimizer steps (it is always written after each epoch)'),
  resume: z
    .union([z.literal(true), str()])
    .optional()
    .describe('continue a stopped run from its saved state: its folder (<runs-dir>/<run>), its run name, or "latest"'),
  // pretrain
  noiseDensity: num(0).max(0.99).default(0.15).describe('pretrain: share of tokens replaced by sentinel spans'),
  meanNoiseSpanLength: num(1).default(3).describe('pretrain: mean length of a corrupted span'),
  steps: int(1).optional().describe('pretrain: optimizer steps to run (default: --epochs over the texts)'),
  maxMinutes: num(0).optional().describe('pretrain: stop after the step that passes this many minutes'),
  evalEverySteps: int(1).default(200).describe('pretrain: held-out denoising loss every N steps'),
  // evaluation
  weightsName: str().optional().describe('checkpoint folder name under --save-weights-path'),
  weights: str().optional().describe('checkpoint folder path'),
  split: z.enum(['train', 'validation', 'test']).default('test').describe('data split to evaluate'),
  decode: z
    .enum(['generate', 'rank'])
    .default('generate')
    .describe('generate = greedy decoding; rank = most likely class name (never invalid)'),
  outputDir: str().optional().describe('where metrics.json and predictions.txt go (default: the checkpoint folder)'),
  // runtime
  backend: z.enum(BACKENDS).default('auto').describe('TensorFlow.js backend: auto picks tfjs-node-gpu, tfjs-node, then wasm'),
  device: z.enum(['auto', 'cuda', 'cpu']).default('auto').describe('cuda requires a working @tensorflow/tfjs-node-gpu'),
  threads: int(1).optional().describe('CPU threads for the wasm and native matmul kernels (default: all cores)'),
  quiet: z.boolean().default(false).describe('print only errors and the final summary'),
  verbose: z.boolean().default(false).describe('print stack traces with errors'),
  // predict and doctor
  /** predict's positional arguments (set by the command line parser, not a flag). */
  texts: z.array(z.string()).optional().describe('texts to classify (positional arguments of predict)'),
  file: str()
    .optional()
    .describe(
      'predict: read texts from this file ("-" for stdin): one per line, or JSONL (a .jsonl/.ndjson file, or when --text-column is given)',
    ),
  format: z
    .enum(['text', 'json', 'tsv'])
    .default('text')
    .describe('predict output: text (for reading), json (one JSON object per line) or tsv (with a header row)'),
  json: z.boolean().default(false).describe('doctor: print a machine-readable JSON summary'),
  // export
  quantize: z
    .boolean()
    .default(false)
    .describe("export: also write 8-bit variants, onnx/*_quantized.onnx (transformers.js dtype 'q8', its default in browsers)"),
  // report
  run: str().optional().describe('report: run name (<model>_<time>), log file, runs/ folder or checkpoint (default: the newest run)'),
  output: str().optional().describe('report: HTML file to write (default reports/<run>.html)'),
});

export type Params = z.infer<typeof ParamsSchema>;
export type ParamName = keyof Params;

const COMMON: ParamName[] = ['backend', 'device', 'threads', 'quiet', 'verbose'];

/** Which options each command takes. */
export const COMMAND_PARAMS: Record<CommandName, ParamName[]> = {
  'load-dataset': [
    'dataset',
    'subset',
    'revision',
    'from',
    'textColumn',
    'labelColumn',
    'skipEmptyTexts',
    'out',
    'classesMap',
    'quiet',
    'verbose',
  ],
  train: [
    'model',
    'init',
    'modelConfig',
    'tokenizer',
    'revision',
    'prefixText',
    'dataDir',
    'classesMap',
    'maxSourceLength',
    'maxTrainExamples',
    'maxEvalExamples',
    'epochs',
    'batchSize',
    'evalBatchSize',
    'learningRate',
    'lrWarmupSteps',
    'weightDecay',
    'useAdafactor',
    'useAdafactorSchedule',
    'adafactorScaleParameter',
    'useWeightedRandomSampler',
    'gradientAccumulationSteps',
    'earlyStoppingPatience',
    'seed',
    'maxSteps',
    'saveWeightsPath',
    'logsDir',
    'runsDir',
    'saveEverySteps',
    'resume',
    ...COMMON,
  ],
  pretrain: [
    'from',
    'textColumn',
    'model',
    'init',
    'modelConfig',
    'tokenizer',
    'revision',
    'maxSourceLength',
    'noiseDensity',
    'meanNoiseSpanLength',
    'epochs',
    'steps',
    'maxMinutes',
    'batchSize',
    'evalBatchSize',
    'learningRate',
    'lrWarmupSteps',
    'weightDecay',
    'useAdafactor',
    'adafactorScaleParameter',
    'evalEverySteps',
    'seed',
    'saveWeightsPath',
    'logsDir',
    'runsDir',
    'saveEverySteps',
    'resume',
    ...COMMON,
  ],
  test: [
    'weightsName',
    'weights',
    'saveWeightsPath',
    'dataDir',
    'split',
    'decode',
    'prefixText',
    'classesMap',
    'tokenizer',
    'evalBatchSize',
    'maxSourceLength',
    'maxEvalExamples',
    'outputDir',
    ...COMMON,
  ],
  predict: [
    'weightsName',
    'weights',
    'saveWeightsPath',
    'decode',
    'prefixText',
    'classesMap',
    'tokenizer',
    'evalBatchSize',
    'maxSourceLength',
    'file',
    'textColumn',
    'format',
    ...COMMON,
  ],
  export: [
    'weightsName',
    'weights',
    'saveWeightsPath',
    'out',
    'tokenizer',
    'prefixText',
    'classesMap',
    'maxSourceLength',
    'quantize',
    'quiet',
    'verbose',
  ],
  doctor: ['backend', 'device', 'threads', 'json', 'verbose'],
  report: ['run', 'output', 'logsDir', 'runsDir', 'saveWeightsPath', 'quiet', 'verbose'],
};

export interface OptionInfo {
  name: ParamName;
  flag: string;
  kind: 'boolean' | 'number' | 'string' | 'enum';
  choices?: readonly string[];
  defaultValue?: unknown;
  optional: boolean;
  /** The flag may be given without a value (`--resume` alone means `true`). */
  valueOptional: boolean;
  /** The flag may be given several times (its schema also takes a list): `--from a --from b`. */
  repeatable: boolean;
  help: string;
}

export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Reads kind, default, choices and help of one option out of the zod schema. */
export function optionInfo(name: ParamName): OptionInfo {
  let t: z.ZodTypeAny = ParamsSchema.shape[name];
  const help = t.description ?? '';
  let defaultValue: unknown;
  let optional = false;
  for (;;) {
    if (t instanceof z.ZodDefault) {
      defaultValue = t._def.defaultValue();
      t = t._def.innerType;
    } else if (t instanceof z.ZodOptional) {
      optional = true;
      t = t._def.innerType;
    } else break;
  }
  const variants = t instanceof z.ZodUnion ? (t.options as z.ZodTypeAny[]) : [];
  const valueOptional = variants.some((o) => o instanceof z.ZodLiteral && o.value === true);
  const repeatable = variants.some((o) => o instanceof z.ZodArray);
  const kind = t instanceof z.ZodBoolean ? 'boolean' : t instanceof z.ZodNumber ? 'number' : t instanceof z.ZodEnum ? 'enum' : 'string';
  return {
    name,
    flag: `--${kebab(name)}`,
    kind,
    choices: t instanceof z.ZodEnum ? (t.options as string[]) : undefined,
    defaultValue,
    optional,
    valueOptional,
    repeatable,
    help,
  };
}

/** Validates raw option values (from the command line and --config) for one command; throws zod's error. */
export function parseParams(command: CommandName, raw: Record<string, unknown>): Params {
  const keys = Object.fromEntries(COMMAND_PARAMS[command].map((k) => [k, true])) as Record<ParamName, true>;
  const schema = ParamsSchema.pick(keys).strict();
  return schema.parse(raw) as Params;
}

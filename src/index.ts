/**
 * The t5cls library: `import { T5ForConditionalGeneration, T5Tokenizer, Adafactor } from 't5cls'`. Importing it
 * changes nothing in tfjs: initBackend starts the backend with our kernels; a model used without it registers the
 * one it cannot do without (the embedding gradient, see engine/kernels/extra.ts).
 */
export { tf } from './tf.js';
export { T5Config, NAMED_CONFIGS, type T5ConfigFields } from './model/config.js';
export { T5ForConditionalGeneration, shiftRight, type ForwardArgs, type ForwardOutput, type GenerateArgs } from './model/modeling_t5.js';
export { DropoutStream } from './model/dropout_stream.js';
export {
  LoraConfig,
  LoraAdapter,
  loadAdapter,
  saveAdapter,
  mergeAdapter,
  fromPretrainedWithAdapter,
  isAdapterFolder,
  type AdaptedModelOptions,
  type LoraConfigOptions,
  type LoraAdapterOptions,
  type SaveAdapterOptions,
} from './model/index.js';
export { tokenNll, sequenceCrossEntropy } from './model/loss.js';
export { IGNORE_INDEX } from './labels.js';
export { T5Tokenizer } from './tokenizer/index.js';
export { Adafactor, AdafactorSchedule, AdamW, type AdafactorOptions, type AdamWOptions } from './train/optimizers/index.js';
export { loadSafetensors, saveSafetensors, readSafetensorsFile, encodeSafetensors } from './safetensors.js';
export { initBackend, type BackendInfo } from './engine/init.js';
export { describeBackends } from './engine/backend_probes.js';
export { classificationMetrics, INVALID_PREDICTION, type ClassificationMetrics } from './eval/metrics.js';
export { Classifier, type Prediction, type ClassifierOptions } from './eval/classifier.js';
export { writeRunReport } from './report/index.js';
export { exportCheckpoint, type ExportOptions, type ExportedFile, type ExportMeta } from './export/index.js';
export { predictGenerate, predictRank, textToClass, type Predictions } from './eval/decoding.js';
export { T5clsError, UsageError, FormatError } from './errors.js';

/** The t5cls library: `import { T5ForConditionalGeneration, T5Tokenizer, Adafactor } from 't5cls'`. */
import { installExtraKernels } from './engine/kernels/extra.js';

// The library works on whatever backend is active; on the plain cpu backend the embedding gradient's stock kernel
// makes one pass per vocabulary entry, so ours (one pass in all) is registered up front. initBackend does the rest.
installExtraKernels('cpu');

export { tf } from './tf.js';
export { T5Config, NAMED_CONFIGS, type T5ConfigFields } from './model/config.js';
export { T5ForConditionalGeneration, shiftRight, type ForwardArgs, type ForwardOutput, type GenerateArgs } from './model/modeling_t5.js';
export { tokenNll, sequenceCrossEntropy, IGNORE_INDEX } from './model/loss.js';
export { T5Tokenizer } from './tokenizer/index.js';
export { Adafactor, AdafactorSchedule, AdamW, type AdafactorOptions, type AdamWOptions } from './train/optimizers/index.js';
export { loadSafetensors, saveSafetensors, readSafetensorsFile, encodeSafetensors } from './safetensors.js';
export { initBackend, describeBackends, type BackendInfo } from './engine/init.js';
export { classificationMetrics, INVALID_PREDICTION, type ClassificationMetrics } from './eval/metrics.js';
export { Classifier, type Prediction, type ClassifierOptions } from './eval/classifier.js';
export { writeRunReport } from './report/index.js';
export { exportCheckpoint, type ExportOptions, type ExportedFile, type ExportMeta } from './export/index.js';
export { predictGenerate, predictRank, textToClass, type Predictions } from './eval/decoding.js';
export { T5clsError, UsageError, FormatError } from './errors.js';

/**
 * Writing an export folder that transformers.js loads from local files:
 *
 *     config.json  generation_config.json  tokenizer.json  tokenizer_config.json  t5cls.json
 *     onnx/encoder_model.onnx  onnx/decoder_model_merged.onnx
 *     onnx/encoder_model_quantized.onnx  onnx/decoder_model_merged_quantized.onnx   (with `quantize`)
 *     index.html  page/…  spiece.model                                             (with `page`, see page_files.ts)
 *
 * Everything is written into a temp folder beside the target and renamed into place when complete, so a failed
 * export leaves no half-written folder; a previous export in the target is replaced, anything else is refused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonObject, writeFileAtomic, writeFolderAtomic } from '../fsutil.js';
import { T5clsError, UsageError } from '../errors.js';
import { writeOnnxFile } from './onnx_file.js';
import type { Graph } from '../protobuf/onnx_model.js';
import { encoderGraph } from './t5_encoder.js';
import { decoderMergedGraph } from './t5_decoder.js';
import { T5Weights } from './t5_weights.js';
import { PAGE_DIR, pageMeta, writePage, type PageSources } from './page_files.js';
import type { T5Tokenizer } from '../tokenizer/index.js';
import {
  DECODER_FILE,
  DECODER_Q8_FILE,
  ENCODER_FILE,
  ENCODER_Q8_FILE,
  EXPORT_META,
  exportConfig,
  exportGenerationConfig,
  exportMeta,
  exportTokenizerConfig,
  type ExportMeta,
} from './model_files.js';

export interface ExportSpec {
  /** The model folder (a t5cls checkpoint or an HF T5 folder) whose weights are exported. */
  checkpointDir: string;
  /** The folder with tokenizer.json (and tokenizer_config.json). */
  tokenizerDir: string;
  outDir: string;
  meta: Omit<ExportMeta, 'format' | 'version' | 'onnx' | 'createdAt'>;
  /** Also write the 8-bit variants (see quantize.ts). */
  quantize?: boolean;
  /** Recorded in the ONNX files as the producer version. */
  producerVersion: string;
  /** Also write the classifier page (index.html, page/, spiece.model): its sources, the tokenizer, the class token ids. */
  page?: { sources: PageSources; tokenizer: T5Tokenizer; classTokens: number[][] };
  onWarning?: (message: string) => void;
}

export interface ExportedFile {
  /** Path relative to the export folder. */
  file: string;
  bytes: number;
}

const TOKENIZER_JSON = 'tokenizer.json';
const TOKENIZER_CONFIG = 'tokenizer_config.json';

/** Writes the export folder `spec.outDir` and returns its files with their sizes. */
export async function writeExport(spec: ExportSpec): Promise<ExportedFile[]> {
  const out = path.resolve(spec.outDir);
  checkTarget(out);
  const tokenizerJson = path.join(spec.tokenizerDir, TOKENIZER_JSON);
  if (!fs.existsSync(tokenizerJson)) {
    throw new UsageError(
      `${spec.tokenizerDir}: no ${TOKENIZER_JSON}, which transformers.js needs; pass --tokenizer with a folder that has one ` +
        `(the base model's, e.g. a t5-small download)`,
    );
  }
  const weights = T5Weights.fromFolder(spec.checkpointDir, spec.onWarning);
  const files: ExportedFile[] = [];
  try {
    await writeFolderAtomic(
      out,
      (tmp) => {
        const text = (file: string, content: string) => {
          writeFileAtomic(path.join(tmp, file), content);
          files.push({ file, bytes: fs.statSync(path.join(tmp, file)).size });
        };
        const json = (file: string, value: unknown) => text(file, JSON.stringify(value, null, 2) + '\n');
        fs.mkdirSync(path.join(tmp, 'onnx'));
        const q8 = spec.quantize ?? false;
        text('config.json', weights.config.jsonText(exportConfig(weights.config, spec.meta.prefix, q8)));
        json('generation_config.json', exportGenerationConfig(weights.config, spec.meta.maxNewTokens));
        writeFileAtomic(path.join(tmp, TOKENIZER_JSON), fs.readFileSync(tokenizerJson));
        files.push({ file: TOKENIZER_JSON, bytes: fs.statSync(tokenizerJson).size });
        json(
          TOKENIZER_CONFIG,
          exportTokenizerConfig(readJsonObject(path.join(spec.tokenizerDir, TOKENIZER_CONFIG)), spec.meta.maxSourceLength),
        );
        json(EXPORT_META, exportMeta(spec.meta, q8));
        const onnx = (file: string, graph: Graph) =>
          files.push({ file, bytes: writeOnnxFile(path.join(tmp, file), graph, spec.producerVersion) });
        onnx(ENCODER_FILE, encoderGraph(weights));
        onnx(DECODER_FILE, decoderMergedGraph(weights));
        if (q8) {
          onnx(ENCODER_Q8_FILE, encoderGraph(weights, true));
          onnx(DECODER_Q8_FILE, decoderMergedGraph(weights, true));
        }
        if (spec.page) {
          fs.mkdirSync(path.join(tmp, PAGE_DIR));
          const { prefix, classes, maxSourceLength } = spec.meta;
          const meta = pageMeta(weights.config, spec.page.tokenizer, {
            prefix,
            classes,
            maxSourceLength,
            classTokens: spec.page.classTokens,
          });
          writePage(spec.page.sources, meta, spec.page.tokenizer.spModel(), (file, data) => {
            writeFileAtomic(path.join(tmp, file), data);
            files.push({ file, bytes: fs.statSync(path.join(tmp, file)).size });
          });
        }
      },
      { replace: true },
    );
  } catch (e) {
    if (e instanceof T5clsError) throw e;
    throw new T5clsError(`could not write the export ${out}: ${(e as Error).message}`, 1, { cause: e });
  }
  return files;
}

/** The target may be missing, an empty folder, or an earlier export (which is replaced). */
function checkTarget(out: string): void {
  if (!fs.existsSync(out)) return;
  if (!fs.statSync(out).isDirectory()) throw new UsageError(`--out ${out}: exists and is not a folder`);
  if (fs.readdirSync(out).length === 0) return;
  const meta = readJsonObject(path.join(out, EXPORT_META));
  if (meta?.format !== 't5cls-export') {
    throw new UsageError(
      `--out ${out}: the folder exists and holds something other than a t5cls export; choose another folder or remove it`,
    );
  }
}

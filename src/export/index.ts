/**
 * `exportCheckpoint(dir, { out })`: a checkpoint as a folder that transformers.js v4 loads
 * (`AutoModelForSeq2SeqLM.from_pretrained(out)`, `pipeline('text2text-generation', out)`), its prefix, classes and
 * input length taken from the checkpoint's t5cls.json unless given.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { readClassesMap } from '../data/index.js';
import { encodeClassNames } from '../data/batches.js';
import { missingClassesError } from '../eval/classifier.js';
import { readCheckpointMeta } from '../checkpoint_meta.js';
import { T5Tokenizer } from '../tokenizer/index.js';
import { UsageError } from '../errors.js';
import { writeExport, type ExportedFile } from './export_folder.js';
import { findPageSources, type PageSources } from './page_files.js';

export { type ExportedFile } from './export_folder.js';
export { PAGE_META, type PageMeta } from './page_files.js';
export { ENCODER_FILE, DECODER_FILE, ENCODER_Q8_FILE, DECODER_Q8_FILE, EXPORT_META, type ExportMeta } from './model_files.js';

const DEFAULT_MAX_SOURCE_LENGTH = 512;

export interface ExportOptions {
  /** The folder to write (replaced if it holds an earlier export). */
  out: string;
  /** A folder with tokenizer.json (and spiece.model); default: the checkpoint's. */
  tokenizer?: string;
  /** Class names: a {"name": id} map, the names in id order, or a classes map file; default: t5cls.json's. */
  classesMap?: Record<string, number> | string[] | string;
  /** Text put before every input; default: t5cls.json's, else none. */
  prefixText?: string;
  /** Input length in tokens; default: t5cls.json's, else 512. */
  maxSourceLength?: number;
  /** Also write 8-bit variants of the ONNX files (transformers.js `dtype: 'q8'`). */
  quantize?: boolean;
  onWarning?: (message: string) => void;
  /** Where the page's files come from, or why there is no page (default: findPageSources()). */
  pageSources?: PageSources | string;
}

function classNamesOf(map: Record<string, number> | string[] | string): string[] {
  if (Array.isArray(map)) {
    if (!map.length) throw new UsageError('classesMap: no classes');
    return [...map];
  }
  const byId = typeof map === 'string' ? readClassesMap(path.resolve(map)) : map;
  const names: string[] = [];
  for (const [name, id] of Object.entries(byId)) names[id] = name;
  if (!names.length || names.some((n) => n === undefined)) throw new UsageError('classesMap: ids must be 0..n-1 without gaps');
  return names;
}

function packageVersion(): string {
  return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
}

export async function exportCheckpoint(dir: string, options: ExportOptions): Promise<ExportedFile[]> {
  const checkpointDir = path.resolve(dir);
  const meta = readCheckpointMeta(checkpointDir);
  const classesMap = options.classesMap ?? meta?.classesMap;
  if (!classesMap) throw missingClassesError(checkpointDir);
  const classes = classNamesOf(classesMap);
  const tokenizerDir = path.resolve(options.tokenizer ?? checkpointDir);
  const tokenizer = await T5Tokenizer.fromPretrained(tokenizerDir);
  const classTokens = encodeClassNames(tokenizer, classes);
  const maxNewTokens = Math.max(...classTokens.map((ids) => ids.length));
  const pageSources = options.pageSources ?? findPageSources();
  if (typeof pageSources === 'string') options.onWarning?.(`the classifier page (index.html) was left out: ${pageSources}`);
  return writeExport({
    checkpointDir,
    tokenizerDir,
    outDir: options.out,
    meta: {
      prefix: options.prefixText ?? meta?.prefixText ?? '',
      classes,
      maxSourceLength: options.maxSourceLength ?? meta?.maxSourceLength ?? DEFAULT_MAX_SOURCE_LENGTH,
      maxNewTokens,
      checkpoint: path.basename(checkpointDir),
      ...(meta?.baseModel ? { baseModel: meta.baseModel } : {}),
    },
    quantize: options.quantize,
    ...(typeof pageSources === 'string' ? {} : { page: { sources: pageSources, tokenizer, classTokens } }),
    producerVersion: packageVersion(),
    onWarning: options.onWarning,
  });
}

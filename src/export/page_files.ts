/**
 * The classifier page of an export folder, which runs the exported ONNX files in the browser:
 *
 *     index.html  spiece.model
 *     page/page.json                  what the page needs: prefix, classes and their token ids, special tokens, sizes
 *     page/t5cls-page.js …            the page's own modules (copied from the package's web/ folder)
 *     page/sentencepiece.js           the sentencepiece-js WebAssembly build t5cls tokenizes with, as an ES module
 *     page/ort.wasm.min.js            onnxruntime-web's WebAssembly build, with
 *     page/ort-wasm-simd-threaded.js, page/ort-wasm-simd-threaded.wasm
 *
 * The class names are tokenized here, with t5cls's own tokenizer; the page tokenizes its texts with the same
 * SentencePiece build, so both see the same ids.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { T5Config } from '../model/config.js';
import type { T5Tokenizer } from '../tokenizer/index.js';
import { DECODER_FILE, ENCODER_FILE } from './model_files.js';

export const PAGE_DIR = 'page';
export const PAGE_META = 'page/page.json';
/**
 * onnxruntime-web's files, renamed from .mjs to .js: every static server sends .js as JavaScript, which module
 * scripts require, while some (older Python http.server) do not know .mjs.
 */
const ORT_FILES: Record<string, string> = {
  'ort.wasm.min.mjs': 'ort.wasm.min.js',
  'ort-wasm-simd-threaded.mjs': 'ort-wasm-simd-threaded.js',
  'ort-wasm-simd-threaded.wasm': 'ort-wasm-simd-threaded.wasm',
};
/** The package's web/ folder: index.html at its top, the page's modules under page/. */
const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');

export interface PageMeta {
  prefix: string;
  classes: string[];
  /** Each class name's token ids, `</s>` included: the sequence whose likelihood ranks the class. */
  classTokens: number[][];
  maxSourceLength: number;
  /** Tokens written literally in a text that become their own id (`<pad>`, `</s>`, `<unk>`, `<extra_id_N>`). */
  specialTokens: Record<string, number>;
  eosTokenId: number;
  padTokenId: number;
  decoderStartTokenId: number;
  numHeads: number;
  keyValueSize: number;
  encoder: string;
  decoder: string;
}

/** The files copied from elsewhere into the page: where they are, or why the page cannot be written. */
export interface PageSources {
  /** onnxruntime-web's files and their names in the page. */
  ortFiles: { source: string; name: string }[];
  sentencepieceJs: string;
  webFiles: string[];
}

/**
 * Finds onnxruntime-web, sentencepiece-js and the page's own files; a string says what is missing. `resolve` finds a
 * package's file (default: Node's resolution from here).
 */
export function findPageSources(resolve: (specifier: string) => string = createRequire(import.meta.url).resolve): PageSources | string {
  let ortDir: string;
  let sentencepieceJs: string;
  try {
    ortDir = path.dirname(resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
  } catch {
    return 'onnxruntime-web is not installed';
  }
  try {
    sentencepieceJs = resolve('sentencepiece-js');
  } catch {
    return 'sentencepiece-js is not installed';
  }
  const ortFiles = Object.entries(ORT_FILES).map(([file, name]) => ({ source: path.join(ortDir, file), name }));
  const missing = ortFiles.find((f) => !fs.existsSync(f.source));
  if (missing) return `${missing.source} is missing from onnxruntime-web`;
  if (!fs.existsSync(path.join(WEB_DIR, 'index.html'))) return `${WEB_DIR}: the page's files are missing`;
  const webFiles = ['index.html', ...fs.readdirSync(path.join(WEB_DIR, PAGE_DIR)).map((f) => path.join(PAGE_DIR, f))];
  return { ortFiles, sentencepieceJs, webFiles };
}

export function pageMeta(
  config: T5Config,
  tokenizer: T5Tokenizer,
  fields: { prefix: string; classes: string[]; classTokens: number[][]; maxSourceLength: number },
): PageMeta {
  const specialTokens: Record<string, number> = {
    '<pad>': tokenizer.padTokenId,
    '</s>': tokenizer.eosTokenId,
    '<unk>': tokenizer.unkTokenId,
  };
  for (let n = 0; n < tokenizer.extraIds; n++) specialTokens[`<extra_id_${n}>`] = tokenizer.sentinelId(n);
  return {
    ...fields,
    specialTokens,
    eosTokenId: tokenizer.eosTokenId,
    padTokenId: config.pad_token_id,
    decoderStartTokenId: config.decoder_start_token_id,
    numHeads: config.num_heads,
    keyValueSize: config.d_kv,
    encoder: ENCODER_FILE,
    decoder: DECODER_FILE,
  };
}

/**
 * sentencepiece-js is a CommonJS bundle that reads its model with `fs.readFileSync`: wrapped as an ES module whose
 * `fs` hands over bytes the page fetched (`provideFile`). Its WebAssembly is inlined in it as a data: URL.
 */
export function sentencepieceModule(commonJsSource: string): string {
  return [
    '// sentencepiece-js (Apache-2.0), wrapped as an ES module by t5cls export.',
    'const files = new Map();',
    'export function provideFile(name, bytes) { files.set(name, bytes); }',
    'const fsStub = { readFileSync: (name) => { if (!files.has(name)) throw new Error(`no file ${name}`); return files.get(name); } };',
    "const requireStub = (name) => { if (name === 'fs') return fsStub; throw new Error(`cannot load ${name} in a browser`); };",
    'const module = { exports: {} };',
    '(function (exports, require, module, __filename, __dirname) {',
    commonJsSource,
    "})(module.exports, requireStub, module, 'sentencepiece.js', '.');",
    'export const SentencePieceProcessor = module.exports.SentencePieceProcessor;',
    '',
  ].join('\n');
}

/** Writes the page's files through `write(path relative to the export folder, data)`. */
export function writePage(
  sources: PageSources,
  meta: PageMeta,
  spieceModel: Uint8Array,
  write: (file: string, data: string | Uint8Array) => void,
): void {
  for (const file of sources.webFiles) write(file, fs.readFileSync(path.join(WEB_DIR, file)));
  for (const { source, name } of sources.ortFiles) write(path.join(PAGE_DIR, name), fs.readFileSync(source));
  write(path.join(PAGE_DIR, 'sentencepiece.js'), sentencepieceModule(fs.readFileSync(sources.sentencepieceJs, 'utf-8')));
  write('spiece.model', spieceModel);
  write(PAGE_META, JSON.stringify(meta, null, 2) + '\n');
}

/**
 * The SentencePiece side of the T5 tokenizer: the `sentencepiece-js` WebAssembly build of the reference C++ library
 * (loading a model, undoing the process handlers its Emscripten runtime installs) and the model's vocabulary, read
 * straight from the ModelProto.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { FormatError } from '../errors.js';
import { ProtoReader, WIRE_BYTES, WIRE_VARINT } from '../protobuf/wire.js';
import { PieceType } from './sp_model_proto.js';

// ---------------------------------------------------------------------------------------------------------------
// sentencepiece-js: a CommonJS emscripten build. Every `load()` instantiates its own WebAssembly module, so each
// tokenizer has its own processor and several can live in one process.

interface EmbindObject {
  delete(): void;
}
interface SpStatus extends EmbindObject {
  ToString(): string;
}
interface SpProcessor {
  status(): SpStatus;
}
interface SpModule {
  FS: { unlink(p: string): void };
}
export interface SpJsProcessor {
  load(file: string): Promise<void>;
  encodeIds(text: string): number[];
  decodeIds(ids: number[]): string;
  processor: SpProcessor;
  sentencepiece: SpModule;
}
interface SpJsPackage {
  SentencePieceProcessor: new () => SpJsProcessor;
}

let spPackage: SpJsPackage | undefined;
function sentencepieceJs(): SpJsPackage {
  spPackage ??= createRequire(import.meta.url)('sentencepiece-js') as SpJsPackage;
  return spPackage;
}

/**
 * Each emscripten instance registers process-wide 'uncaughtException' / 'unhandledRejection' handlers that rethrow.
 * They would change how the host process reports its own errors and would keep every instance alive forever, so
 * they are removed once the module is ready. They are recognised by their exact source text.
 */
const EMSCRIPTEN_UNCAUGHT_HANDLER = 'function(ex){if(!(ex instanceof ExitStatus)){throw ex}}';
const EMSCRIPTEN_REJECTION_HANDLER = 'function(reason){throw reason}';
function removeEmscriptenProcessHandlers(): void {
  for (const fn of process.listeners('uncaughtException')) {
    if (String(fn) === EMSCRIPTEN_UNCAUGHT_HANDLER) process.removeListener('uncaughtException', fn);
  }
  for (const fn of process.listeners('unhandledRejection')) {
    if (String(fn) === EMSCRIPTEN_REJECTION_HANDLER) process.removeListener('unhandledRejection', fn);
  }
}

/** A processor for the model in `file`; `source` names the model in errors (default: the file). */
export async function loadProcessor(file: string, source = file): Promise<SpJsProcessor> {
  const sp = new (sentencepieceJs().SentencePieceProcessor)();
  try {
    await sp.load(file);
  } finally {
    removeEmscriptenProcessHandlers();
  }
  const status = sp.processor.status();
  const message = status.ToString();
  status.delete();
  if (message !== 'OK') throw new FormatError(`${source}: SentencePiece cannot load this model (${message})`);
  try {
    sp.sentencepiece.FS.unlink('sentencepiece.model');
  } catch {
    // Only frees the in-memory copy the loader made; the processor no longer needs it.
  }
  return sp;
}

/** A processor for model bytes that are not in a file (a rebuilt model): sentencepiece-js only loads from a path. */
export async function loadProcessorFromBytes(bytes: Uint8Array, source: string): Promise<SpJsProcessor> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-spiece-'));
  try {
    const file = path.join(dir, 'spiece.model');
    fs.writeFileSync(file, bytes);
    return await loadProcessor(file, source);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The vocabulary, read straight from the ModelProto (field 1: repeated SentencePiece { 1: piece, 2: score,
// 3: type }), since the WebAssembly build exposes neither the vocabulary size nor id → piece.

export interface SpVocab {
  pieces: string[];
  types: Uint8Array;
}

export function parseSpVocab(bytes: Uint8Array, file: string): SpVocab {
  const bad = (what: string): never => {
    throw new FormatError(`${file}: not a valid SentencePiece model (${what})`);
  };
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const pieces: string[] = [];
  const types: number[] = [];
  const model = new ProtoReader(bytes, bad);
  while (!model.done) {
    const { field, wireType } = model.key();
    if (field !== 1) {
      model.skip(wireType);
      continue;
    }
    if (wireType !== WIRE_BYTES) bad('field "pieces" is not a message');
    const entry = model.message();
    let piece: string | undefined;
    let type: number = PieceType.NORMAL;
    while (!entry.done) {
      const k = entry.key();
      if (k.field === 1 && k.wireType === WIRE_BYTES) {
        const text = entry.bytesField();
        try {
          piece = utf8.decode(text);
        } catch {
          bad(`piece ${pieces.length} is not valid UTF-8`);
        }
      } else if (k.field === 3 && k.wireType === WIRE_VARINT) {
        type = entry.varint();
      } else {
        entry.skip(k.wireType);
      }
    }
    if (piece === undefined) bad(`piece ${pieces.length} has no text`);
    pieces.push(piece!);
    types.push(type);
  }
  if (pieces.length === 0) bad('no vocabulary');
  return { pieces, types: Uint8Array.from(types) };
}

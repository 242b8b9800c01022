/**
 * The SentencePiece side of the T5 tokenizer: the `sentencepiece-js` WebAssembly build of the reference C++ library
 * (loading a model, undoing the process handlers its Emscripten runtime installs) and the model's vocabulary, read
 * straight from the ModelProto.
 */
import { createRequire } from 'node:module';
import { FormatError } from '../errors.js';

/** SentencePiece piece types (sentencepiece_model.proto). */
const PIECE_TYPE_NORMAL = 1;
export const PIECE_TYPE_UNKNOWN = 2;

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

export async function loadProcessor(file: string): Promise<SpJsProcessor> {
  const sp = new (sentencepieceJs().SentencePieceProcessor)();
  try {
    await sp.load(file);
  } finally {
    removeEmscriptenProcessHandlers();
  }
  const status = sp.processor.status();
  const message = status.ToString();
  status.delete();
  if (message !== 'OK') throw new FormatError(`${file}: SentencePiece cannot load this model (${message})`);
  try {
    sp.sentencepiece.FS.unlink('sentencepiece.model');
  } catch {
    // Only frees the in-memory copy the loader made; the processor no longer needs it.
  }
  return sp;
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
  let pos = 0;
  let end = bytes.length;
  const varint = (): number => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) bad('truncated varint');
      const b = bytes[pos++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    return bad('varint too long');
  };
  const skip = (wireType: number): void => {
    if (wireType === 0) varint();
    else if (wireType === 1) pos += 8;
    else if (wireType === 2) {
      const n = varint();
      pos += n;
    } else if (wireType === 5) pos += 4;
    else bad(`unsupported wire type ${wireType}`);
    if (pos > end) bad('truncated field');
  };

  const pieces: string[] = [];
  const types: number[] = [];
  while (pos < end) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wireType = key & 7;
    if (field !== 1) {
      skip(wireType);
      continue;
    }
    if (wireType !== 2) bad('field "pieces" is not a message');
    const len = varint();
    const msgEnd = pos + len;
    if (msgEnd > end) bad('truncated piece');
    const outerEnd = end;
    end = msgEnd;
    let piece: string | undefined;
    let type = PIECE_TYPE_NORMAL;
    while (pos < end) {
      const k = varint();
      const f = Math.floor(k / 8);
      const wt = k & 7;
      if (f === 1 && wt === 2) {
        const n = varint();
        if (pos + n > end) bad('truncated piece text');
        try {
          piece = utf8.decode(bytes.subarray(pos, pos + n));
        } catch {
          bad(`piece ${pieces.length} is not valid UTF-8`);
        }
        pos += n;
      } else if (f === 3 && wt === 0) {
        type = varint();
      } else {
        skip(wt);
      }
    }
    end = outerEnd;
    if (piece === undefined) bad(`piece ${pieces.length} has no text`);
    pieces.push(piece!);
    types.push(type);
  }
  if (pieces.length === 0) bad('no vocabulary');
  return { pieces, types: Uint8Array.from(types) };
}

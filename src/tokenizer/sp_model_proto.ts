/**
 * The part of SentencePiece's ModelProto (sentencepiece_model.proto) that decides how a unigram model encodes and
 * decodes, and its encoding as a `spiece.model` file. Fields left out take SentencePiece's defaults.
 */
import { messageBytes, ProtoMessage } from '../protobuf/wire.js';

/** SentencePiece.Type. */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

export interface SpPiece {
  piece: string;
  score: number;
  type: number;
}

export interface SpTrainerSpec {
  /** -1: no such piece. */
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  byteFallback: boolean;
}

export interface SpNormalizerSpec {
  /** Only informative: a loaded model normalises with `precompiledCharsmap` alone (empty: no normalisation). */
  name: string;
  precompiledCharsmap: Uint8Array;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

export interface SpModel {
  pieces: SpPiece[];
  trainer: SpTrainerSpec;
  normalizer: SpNormalizerSpec;
}

// Field numbers of sentencepiece_model.proto.
const MODEL = { pieces: 1, trainerSpec: 2, normalizerSpec: 3 };
const PIECE = { piece: 1, score: 2, type: 3 };
const TRAINER = { modelType: 3, vocabSize: 4, byteFallback: 35, unkId: 40, bosId: 41, eosId: 42, padId: 43 };
const NORMALIZER = { name: 1, precompiledCharsmap: 2, addDummyPrefix: 3, removeExtraWhitespaces: 4, escapeWhitespaces: 5 };
const MODEL_TYPE_UNIGRAM = 1;

/** The `spiece.model` bytes of a unigram model. */
export function encodeSpModel(model: SpModel): Uint8Array {
  const proto = new ProtoMessage();
  for (const { piece, score, type } of model.pieces) {
    const m = new ProtoMessage().string(PIECE.piece, piece).float(PIECE.score, score);
    // As SentencePiece's trainer writes them: NORMAL, the default, is left implicit.
    if (type !== PieceType.NORMAL) m.int(PIECE.type, type);
    proto.message(MODEL.pieces, m);
  }

  const t = model.trainer;
  const trainer = new ProtoMessage()
    .int(TRAINER.modelType, MODEL_TYPE_UNIGRAM)
    .int(TRAINER.vocabSize, model.pieces.length)
    .int(TRAINER.unkId, t.unkId)
    .int(TRAINER.bosId, t.bosId)
    .int(TRAINER.eosId, t.eosId)
    .int(TRAINER.padId, t.padId);
  if (t.byteFallback) trainer.int(TRAINER.byteFallback, 1);
  proto.message(MODEL.trainerSpec, trainer);

  const n = model.normalizer;
  const normalizer = new ProtoMessage();
  if (n.name !== '') normalizer.string(NORMALIZER.name, n.name);
  if (n.precompiledCharsmap.byteLength > 0) normalizer.bytes(NORMALIZER.precompiledCharsmap, n.precompiledCharsmap);
  normalizer
    .int(NORMALIZER.addDummyPrefix, n.addDummyPrefix ? 1 : 0)
    .int(NORMALIZER.removeExtraWhitespaces, n.removeExtraWhitespaces ? 1 : 0)
    .int(NORMALIZER.escapeWhitespaces, n.escapeWhitespaces ? 1 : 0);
  proto.message(MODEL.normalizerSpec, normalizer);

  return messageBytes(proto);
}

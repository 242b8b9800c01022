/**
 * Text → token ids as t5cls encodes a classifier input (src/tokenizer/t5_tokenizer.ts, src/data/batches.ts):
 * special tokens written in the text become their own ids, the rest goes through the same SentencePiece build
 * (sentencepiece-js), `</s>` is appended, and a text over `maxLength` ids is cut with its final `</s>` kept.
 */
import { SentencePieceProcessor, provideFile } from './sentencepiece.js';

const MODEL_NAME = 'spiece.model';

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A tokenizer from spiece.model's bytes and page.json's special tokens. */
export async function loadTokenizer(modelBytes, { specialTokens, eosTokenId }) {
  provideFile(MODEL_NAME, modelBytes);
  const sp = new SentencePieceProcessor();
  await sp.load(MODEL_NAME);
  // Longest first, so that the longest special token wins at each position.
  const names = Object.keys(specialTokens).sort((a, b) => b.length - a.length).map(escapeRegExp);
  const pattern = names.length ? new RegExp(`(${names.join('|')})`) : undefined;

  function encode(text) {
    const ids = [];
    const parts = pattern ? text.split(pattern) : [text];
    // split() with one capture group alternates: text, special token, text, …
    parts.forEach((part, i) => {
      if (i % 2 === 1) ids.push(specialTokens[part]);
      else if (part.length > 0) for (const id of sp.encodeIds(part)) ids.push(id);
    });
    if (ids[ids.length - 1] !== eosTokenId) ids.push(eosTokenId);
    return ids;
  }

  return {
    encode,
    /** The ids of a classifier input: prefix + text, at most maxLength ids, the final `</s>` kept. */
    encodeInput(text, prefix, maxLength) {
      const ids = encode(prefix + text);
      if (ids.length <= maxLength) return ids;
      return [...ids.slice(0, maxLength - 1), ids[ids.length - 1]];
    },
  };
}

/**
 * Rank classification as `t5cls predict --decode rank` does it (src/eval/decoding.ts predictRank): a class's score
 * is the log-likelihood of its token sequence (`</s>` included) after the decoder start token, and the
 * probabilities are the softmax of the scores. One encoder pass per text, then one decoder pass over every class at
 * once: row c holds the start token and class c's tokens but its last, padded to the longest (the decoder is causal,
 * so padding after a row's tokens does not change their logits).
 */

function int64Tensor(ort, rows) {
  const width = rows[0].length;
  return new ort.Tensor('int64', BigInt64Array.from(rows.flat(), (v) => BigInt(v)), [rows.length, width]);
}

/** log p(token) from one row of logits, in float64. */
function logProbability(logits, offset, vocab, token) {
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) max = Math.max(max, logits[offset + v]);
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(logits[offset + v] - max);
  return logits[offset + token] - max - Math.log(sum);
}

export function softmax(scores) {
  const max = Math.max(...scores);
  const exp = scores.map((s) => Math.exp(s - max));
  const total = exp.reduce((a, b) => a + b, 0);
  return exp.map((e) => e / total);
}

/** Every class's probability for one input (token ids, `</s>` included). */
export async function classProbabilities(ort, { encoder, decoder }, inputIds, meta) {
  const { classTokens, decoderStartTokenId, padTokenId, numHeads, keyValueSize } = meta;
  const mask = inputIds.map(() => 1);
  const encoded = await encoder.run({ input_ids: int64Tensor(ort, [inputIds]), attention_mask: int64Tensor(ort, [mask]) });
  const hidden = encoded.last_hidden_state;
  const classes = classTokens.length;
  const steps = Math.max(...classTokens.map((t) => t.length));
  const rows = classTokens.map((tokens) => {
    const row = [decoderStartTokenId, ...tokens.slice(0, -1)];
    while (row.length < steps) row.push(padTokenId);
    return row;
  });
  const [, length, width] = hidden.dims;
  const repeated = new Float32Array(classes * length * width);
  for (let c = 0; c < classes; c++) repeated.set(hidden.data, c * length * width);
  const feeds = {
    input_ids: int64Tensor(ort, rows),
    encoder_attention_mask: int64Tensor(ort, rows.map(() => mask)),
    encoder_hidden_states: new ort.Tensor('float32', repeated, [classes, length, width]),
    use_cache_branch: new ort.Tensor('bool', [false], [1]),
  };
  for (const name of decoder.inputNames) {
    if (name.startsWith('past_key_values.')) feeds[name] = new ort.Tensor('float32', new Float32Array(0), [classes, numHeads, 0, keyValueSize]);
  }
  const output = await decoder.run(feeds, ['logits']);
  const logits = output.logits.data;
  const vocab = output.logits.dims[2];
  const scores = classTokens.map((tokens, c) => {
    let sum = 0;
    tokens.forEach((token, k) => (sum += logProbability(logits, (c * steps + k) * vocab, vocab, token)));
    return sum;
  });
  for (const t of [...Object.values(encoded), ...Object.values(output)]) t.dispose?.();
  return softmax(scores);
}

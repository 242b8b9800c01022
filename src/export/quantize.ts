/**
 * 8-bit weights: symmetric int8 per output channel (scale = max |w| / 127 of the channel, zero point 0), the
 * layout ONNX DequantizeLinear reads back as q · scale.
 */

export interface QuantizedMatrix {
  /** The int8 values, same layout as the input. */
  q: Int8Array;
  /** One scale per index of `axis`. */
  scales: Float32Array;
}

/** Quantizes a row-major [rows, cols] matrix with one scale per row (axis 0) or per column (axis 1). */
export function quantizeInt8(values: Float32Array, rows: number, cols: number, axis: 0 | 1): QuantizedMatrix {
  const channels = axis === 0 ? rows : cols;
  const channelOf = (i: number) => (axis === 0 ? Math.floor(i / cols) : i % cols);
  const largest = new Float32Array(channels);
  values.forEach((v, i) => {
    const c = channelOf(i);
    largest[c] = Math.max(largest[c] ?? 0, Math.abs(v));
  });
  // An all-zero channel gets scale 1, so that dequantizing gives its zeros back.
  const scales = largest.map((m) => (m > 0 ? m / 127 : 1));
  const q = new Int8Array(values.length);
  values.forEach((v, i) => {
    q[i] = Math.max(-127, Math.min(127, Math.round(v / (scales[channelOf(i)] ?? 1))));
  });
  return { q, scales };
}

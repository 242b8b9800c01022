/**
 * A checkpoint's T5 weights as ONNX initializers, each read from its safetensors file only when the ONNX file is
 * written: linear weights transposed to [in, out] for MatMul, the rest as stored, matrices also in 8 bits (int8
 * values + per-channel scales), and each stack's relative position bias expanded into a table indexed by relative
 * position.
 */
import * as os from 'node:os';
import { T5Config } from '../model/config.js';
import { readModelConfig } from '../model/pretrained_config.js';
import { t5Parameters, type T5Parameters } from '../model/parameters.js';
import { loadCheckpointTensors, resolveStateDict } from '../model/weights.js';
import { relativePositionBucket } from '../model/layers.js';
import type { LazyTensor } from '../safetensors.js';
import { T5clsError } from '../errors.js';
import type { Initializer } from '../protobuf/onnx_model.js';
import { quantizeInt8, type QuantizedMatrix } from './quantize.js';

export type Stack = 'encoder' | 'decoder';

/** An 8-bit matrix: int8 values and one float32 scale per output channel (DequantizeLinear's inputs). */
export interface Int8Initializers {
  q: Initializer;
  scale: Initializer;
}

function floatBytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** [rows, cols] row-major → [cols, rows]. */
function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c] ?? 0;
  }
  return out;
}

export class T5Weights {
  /** The last matrix quantized: its values and scales become two initializers, written one after the other. */
  private lastQuantized?: { key: string; value: QuantizedMatrix };
  /** Where each weight sits in the model, by its HF name. */
  readonly layout: T5Parameters;

  private constructor(
    readonly config: T5Config,
    private readonly tensors: Map<string, LazyTensor>,
  ) {
    this.layout = t5Parameters(config);
  }

  /** The weights of a model folder (config.json + safetensors), names and shapes checked against the config. */
  static fromFolder(dir: string, onWarning?: (message: string) => void): T5Weights {
    // raw_data is little-endian; Float32Array bytes are the host's.
    if (os.endianness() !== 'LE') throw new T5clsError('export needs a little-endian machine');
    const tensors = loadCheckpointTensors(dir);
    const config = readModelConfig(dir, tensors);
    const { values, unexpected } = resolveStateDict(
      t5Parameters(config).all.map((p) => [p.name, p.shape]),
      config.tie_word_embeddings,
      tensors,
      dir,
    );
    for (const name of unexpected) onWarning?.(`${dir}: ignoring unexpected tensor "${name}"`);
    return new T5Weights(config, values);
  }

  private tensor(name: string): LazyTensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`the checkpoint has no tensor ${name}`);
    return t;
  }

  /** The float32 values of a parameter, read now. */
  read(name: string): Float32Array {
    const values = this.tensor(name).read();
    if (!(values instanceof Float32Array)) throw new Error(`tensor ${name} is not floating-point`);
    return values;
  }

  /** A parameter as stored (layer norm weights, the embedding, the LM head). */
  stored(name: string): Initializer {
    const { shape } = this.tensor(name);
    const byteLength = 4 * shape.reduce((a, b) => a * b, 1);
    return { name, type: 'float32', dims: shape, data: { byteLength, bytes: () => floatBytes(this.read(name)) } };
  }

  /** A torch Linear weight [out, in] as the [in, out] matrix that MatMul(x, W) needs. */
  linear(name: string): Initializer {
    const [out, inDim] = this.tensor(name).shape as [number, number];
    return {
      name: `${name}.T`,
      type: 'float32',
      dims: [inDim, out],
      data: { byteLength: 4 * out * inDim, bytes: () => floatBytes(transpose(this.read(name), out, inDim)) },
    };
  }

  /** `linear(name)` in 8 bits: the [in, out] matrix as int8 with one scale per output column. */
  linearInt8(name: string): Int8Initializers {
    const [out, inDim] = this.tensor(name).shape as [number, number];
    return this.int8(`${name}.T`, [inDim, out], 1, () => transpose(this.read(name), out, inDim));
  }

  /** A stored [rows, cols] matrix (the embedding, the LM head) in 8 bits, one scale per row. */
  rowsInt8(name: string): Int8Initializers {
    const [rows, cols] = this.tensor(name).shape as [number, number];
    return this.int8(name, [rows, cols], 0, () => this.read(name));
  }

  private int8(name: string, dims: [number, number], axis: 0 | 1, values: () => Float32Array): Int8Initializers {
    const key = `${name}/${axis}`;
    const quantized = (): QuantizedMatrix => {
      if (this.lastQuantized?.key !== key) this.lastQuantized = { key, value: quantizeInt8(values(), dims[0], dims[1], axis) };
      return this.lastQuantized.value;
    };
    const channels = dims[axis];
    return {
      q: {
        name: `${name}.int8`,
        type: 'int8',
        dims,
        data: { byteLength: dims[0] * dims[1], bytes: () => new Uint8Array(quantized().q.buffer) },
      },
      scale: {
        name: `${name}.scale`,
        type: 'float32',
        dims: [channels],
        data: { byteLength: 4 * channels, bytes: () => floatBytes(quantized().scales) },
      },
    };
  }

  /**
   * The position bias of a stack by relative position (key − query) from −maxDistance to +maxDistance:
   * [2·maxDistance + 1, heads], row r + maxDistance = the bias of r's bucket. Beyond maxDistance every
   * relative position falls in the last bucket, so clamping a relative position into this range is exact.
   */
  positionTable(stack: Stack): Initializer {
    const c = this.config;
    const d = c.relative_attention_max_distance;
    const heads = c.num_heads;
    const name = this.layout[stack].relativeBias;
    return {
      name: `${stack}.relative_position_table`,
      type: 'float32',
      dims: [2 * d + 1, heads],
      data: {
        byteLength: 4 * (2 * d + 1) * heads,
        bytes: () => floatBytes(positionTableValues(this.read(name), stack === 'encoder', c.relative_attention_num_buckets, d, heads)),
      },
    };
  }
}

/** See T5Weights.positionTable: `bias` is the [buckets, heads] embedding of relative position buckets. */
export function positionTableValues(
  bias: Float32Array,
  bidirectional: boolean,
  numBuckets: number,
  maxDistance: number,
  heads: number,
): Float32Array {
  const out = new Float32Array((2 * maxDistance + 1) * heads);
  for (let r = -maxDistance; r <= maxDistance; r++) {
    const bucket = relativePositionBucket(r, bidirectional, numBuckets, maxDistance);
    out.set(bias.subarray(bucket * heads, (bucket + 1) * heads), (r + maxDistance) * heads);
  }
  return out;
}

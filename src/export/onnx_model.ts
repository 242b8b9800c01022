/**
 * ONNX models as plain data (graph, nodes, typed and shaped inputs/outputs, initializers) and their encoding in
 * the protobuf wire format (onnx/onnx.proto: ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto,
 * AttributeProto). Initializers carry their data as `raw_data` chunks, possibly lazy, so weights go from the
 * checkpoint to the file one tensor at a time.
 */
import { ProtoMessage, type Chunk } from '../protobuf.js';

/** The ONNX standard opset the export uses: onnxruntime-web and onnxruntime-node both run it. */
export const OPSET = 17;
/** The IR version that goes with opset 17. */
const IR_VERSION = 8;

export type ElemType = 'float32' | 'int64' | 'bool' | 'int8' | 'uint8';

/** TensorProto.DataType values. */
const DATA_TYPE: Record<ElemType, number> = { float32: 1, uint8: 2, int8: 3, int64: 7, bool: 9 };

export const BYTES_PER_ELEMENT: Record<ElemType, number> = { float32: 4, uint8: 1, int8: 1, int64: 8, bool: 1 };

/** A dimension: a fixed size, or a named (symbolic) one such as `batch_size`. */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  type: ElemType;
  /** Left out: any rank (what a subgraph output may declare). */
  shape?: Dim[];
}

export interface Initializer {
  name: string;
  type: ElemType;
  dims: number[];
  /** Little-endian element data (`raw_data`), `dims` elements long. */
  data: Chunk;
}

export interface Graph {
  name: string;
  nodes: OnnxNode[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Initializer[];
}

/** Attribute values: whole numbers, floats (wrapped, to tell 1.0 from 1), integer lists, or subgraphs (If). */
export type AttributeValue = number | { float: number } | number[] | { graph: Graph };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, AttributeValue>;
}

const ATTRIBUTE_TYPE = { float: 1, int: 2, graph: 5, ints: 7 } as const;

function attribute(name: string, value: AttributeValue): ProtoMessage {
  const m = new ProtoMessage().string(1, name);
  if (Array.isArray(value)) {
    for (const v of value) m.int(8, v);
    return m.int(20, ATTRIBUTE_TYPE.ints);
  }
  if (typeof value === 'number') return m.int(3, value).int(20, ATTRIBUTE_TYPE.int);
  if ('graph' in value) return m.message(6, encodeGraph(value.graph)).int(20, ATTRIBUTE_TYPE.graph);
  return m.float(2, value.float).int(20, ATTRIBUTE_TYPE.float);
}

function valueInfo(v: ValueInfo): ProtoMessage {
  const tensorType = new ProtoMessage().int(1, DATA_TYPE[v.type]);
  if (v.shape) {
    const shape = new ProtoMessage();
    for (const d of v.shape) shape.message(1, typeof d === 'number' ? new ProtoMessage().int(1, d) : new ProtoMessage().string(2, d));
    tensorType.message(2, shape);
  }
  return new ProtoMessage().string(1, v.name).message(2, new ProtoMessage().message(1, tensorType));
}

function tensor(t: Initializer): ProtoMessage {
  const expected = t.dims.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[t.type];
  if (t.data.byteLength !== expected)
    throw new Error(`initializer ${t.name}: ${t.data.byteLength} bytes for dims [${t.dims.join(', ')}] of ${t.type}`);
  const m = new ProtoMessage();
  for (const d of t.dims) m.int(1, d);
  return m.int(2, DATA_TYPE[t.type]).string(8, t.name).bytes(9, t.data);
}

function encodeNode(node: OnnxNode, name: string): ProtoMessage {
  const m = new ProtoMessage();
  for (const name of node.inputs) m.string(1, name);
  for (const name of node.outputs) m.string(2, name);
  m.string(3, name).string(4, node.op);
  for (const [name, value] of Object.entries(node.attributes ?? {})) m.message(5, attribute(name, value));
  return m;
}

function encodeGraph(g: Graph): ProtoMessage {
  const m = new ProtoMessage();
  g.nodes.forEach((node, i) => m.message(1, encodeNode(node, `${g.name}/${node.op}_${i}`)));
  m.string(2, g.name);
  for (const t of g.initializers) m.message(5, tensor(t));
  for (const v of g.inputs) m.message(11, valueInfo(v));
  for (const v of g.outputs) m.message(12, valueInfo(v));
  return m;
}

/** A ModelProto of `graph` at the standard opset OPSET, named as made by t5cls. */
export function encodeModel(graph: Graph, producerVersion: string): ProtoMessage {
  return new ProtoMessage()
    .int(1, IR_VERSION)
    .string(2, 't5cls')
    .string(3, producerVersion)
    .message(8, new ProtoMessage().string(1, '').int(2, OPSET))
    .message(7, encodeGraph(graph));
}

/**
 * ONNX models as plain data (graph, nodes, typed and optionally shaped inputs/outputs, initializers) and their
 * encoding in the protobuf wire format (onnx/onnx.proto: ModelProto, GraphProto, NodeProto, TensorProto,
 * ValueInfoProto, AttributeProto, OperatorSetIdProto). The one encoder of both the engine's ONNX Runtime graphs and
 * the export. Initializers carry their data as `raw_data` chunks, possibly lazy, so an export's weights go from the
 * checkpoint to the file one tensor at a time.
 */
import { ProtoMessage, type Chunk } from './wire.js';

/** The IR version of opset 17, the newest standard opset t5cls writes. */
const IR_VERSION = 8;

export type ElemType = 'float32' | 'int64' | 'bool' | 'int8' | 'uint8';

/** TensorProto.DataType values. */
const DATA_TYPE: Record<ElemType, number> = { float32: 1, uint8: 2, int8: 3, int64: 7, bool: 9 };

const BYTES_PER_ELEMENT: Record<ElemType, number> = { float32: 4, uint8: 1, int8: 1, int64: 8, bool: 1 };

/** A dimension: a fixed size, or a named (symbolic) one such as `batch_size`. */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  type: ElemType;
  /** Left out: any rank, any size. */
  shape?: Dim[];
}

export interface Initializer {
  name: string;
  type: ElemType;
  dims: number[];
  /** Little-endian element data (`raw_data`), `dims` elements long. */
  data: Chunk;
}

/** Attribute values: whole numbers, floats (wrapped, to tell 1.0 from 1), integer lists, or subgraphs (If). */
export type AttributeValue = number | { float: number } | number[] | { graph: Graph };

export interface OnnxNode {
  op: string;
  /** An empty name stands for an optional input left out. */
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, AttributeValue>;
  /** '' (the standard operators, the default) or 'com.microsoft' (ONNX Runtime's contrib operators). */
  domain?: '' | 'com.microsoft';
  /** Default: `<graph name>/<op>_<index in the graph>`. */
  name?: string;
}

export interface Graph {
  name: string;
  /** In topological order. */
  nodes: OnnxNode[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Initializer[];
}

export interface OpsetImport {
  domain: '' | 'com.microsoft';
  version: number;
}

export interface ModelContents {
  graph: Graph;
  /** One for each domain the nodes use. */
  opsets: OpsetImport[];
  /** Left out of the file when not given. */
  producerVersion?: string;
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
  for (const input of node.inputs) m.string(1, input);
  for (const output of node.outputs) m.string(2, output);
  m.string(3, name).string(4, node.op);
  for (const [attributeName, value] of Object.entries(node.attributes ?? {})) m.message(5, attribute(attributeName, value));
  if (node.domain) m.string(7, node.domain);
  return m;
}

function encodeGraph(g: Graph): ProtoMessage {
  const m = new ProtoMessage();
  g.nodes.forEach((node, i) => m.message(1, encodeNode(node, node.name ?? `${g.name}/${node.op}_${i}`)));
  m.string(2, g.name);
  for (const t of g.initializers) m.message(5, tensor(t));
  for (const v of g.inputs) m.message(11, valueInfo(v));
  for (const v of g.outputs) m.message(12, valueInfo(v));
  return m;
}

/** A ModelProto, named as made by t5cls; its chunks stream to a file (or `messageBytes` gathers them). */
export function encodeModel(model: ModelContents): ProtoMessage {
  const m = new ProtoMessage().int(1, IR_VERSION).string(2, 't5cls');
  if (model.producerVersion !== undefined) m.string(3, model.producerVersion);
  for (const { domain, version } of model.opsets) m.message(8, new ProtoMessage().string(1, domain).int(2, version));
  return m.message(7, encodeGraph(model.graph));
}

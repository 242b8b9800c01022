/**
 * Hand-encoded ONNX models of a few nodes: the native kernels need only these, so no protobuf library is
 * involved. Graph inputs and outputs are declared with an element type and no shape (any rank, any size), so one
 * session serves every shape.
 *
 * Wire format reference: onnx/onnx.proto (ModelProto, GraphProto, NodeProto, ValueInfoProto, TypeProto,
 * AttributeProto, OperatorSetIdProto).
 */

/** TensorProto.DataType values. */
export const ONNX_FLOAT = 1;

type Bytes = number[];

function varint(value: number | bigint): Bytes {
  // Negative int64 values are sent as their 64-bit two's complement (10 bytes).
  let v = BigInt.asUintN(64, BigInt(value));
  const out: Bytes = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

function tag(field: number, wireType: 0 | 2 | 5): Bytes {
  return varint(field * 8 + wireType);
}

function intField(field: number, value: number): Bytes {
  return [...tag(field, 0), ...varint(value)];
}

function floatField(field: number, value: number): Bytes {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setFloat32(0, value, true);
  return [...tag(field, 5), ...b];
}

function bytesField(field: number, content: Bytes): Bytes {
  return [...tag(field, 2), ...varint(content.length), ...content];
}

function stringField(field: number, s: string): Bytes {
  return bytesField(field, [...new TextEncoder().encode(s)]);
}

/** ValueInfoProto{name=1, type=2: TypeProto{tensor_type=1: Tensor{elem_type=1}}}, shape left out. */
function tensorValueInfo(name: string, elemType: number): Bytes {
  return [...stringField(1, name), ...bytesField(2, bytesField(1, intField(1, elemType)))];
}

/** An attribute value: integers (whole numbers), floats (wrapped, to tell 1.0 from 1) or integer lists. */
export type AttributeValue = number | { float: number } | number[];

/** AttributeProto{name=1, f=2, i=3, ints=8, type=20 (FLOAT = 1, INT = 2, INTS = 7)}. */
function attribute(name: string, value: AttributeValue): Bytes {
  if (Array.isArray(value)) return [...stringField(1, name), ...value.flatMap((v) => intField(8, v)), ...intField(20, 7)];
  if (typeof value === 'object') return [...stringField(1, name), ...floatField(2, value.float), ...intField(20, 1)];
  return [...stringField(1, name), ...intField(3, value), ...intField(20, 2)];
}

/** TensorProto{dims=1, data_type=2 (INT64 = 7), name=8, raw_data=9}: a constant int64 tensor. */
function int64Tensor(name: string, values: readonly number[]): Bytes {
  const raw = new Uint8Array(8 * values.length);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setBigInt64(8 * i, BigInt(v), true));
  return [...intField(1, values.length), ...intField(2, 7), ...stringField(8, name), ...bytesField(9, [...raw])];
}

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, AttributeValue>;
  /** '' (the standard operators) or 'com.microsoft' (ONNX Runtime's contrib operators). */
  domain?: '' | 'com.microsoft';
}

/**
 * A model of `nodes` (in topological order) with float graph inputs and outputs of any shape; an empty input name
 * in a node stands for an optional input left out; `constants` are 1-D int64 initializers (shapes for Reshape).
 * Standard operators at opset 17, contrib operators at 1.
 */
export function onnxModel(
  nodes: OnnxNode[],
  inputs: string[],
  outputs: string[],
  elemType = ONNX_FLOAT,
  constants: Record<string, readonly number[]> = {},
): Uint8Array {
  const encodedNodes = nodes.map((node, i) => [
    ...node.inputs.flatMap((name) => stringField(1, name)),
    ...node.outputs.flatMap((name) => stringField(2, name)),
    ...stringField(3, `n${i}`),
    ...stringField(4, node.op),
    ...Object.entries(node.attributes ?? {}).flatMap(([name, value]) => bytesField(5, attribute(name, value))),
    ...(node.domain ? stringField(7, node.domain) : []),
  ]);
  const graph: Bytes = [
    ...encodedNodes.flatMap((n) => bytesField(1, n)),
    ...stringField(2, 't5cls'),
    ...Object.entries(constants).flatMap(([name, values]) => bytesField(5, int64Tensor(name, values))),
    ...inputs.flatMap((name) => bytesField(11, tensorValueInfo(name, elemType))),
    ...outputs.flatMap((name) => bytesField(12, tensorValueInfo(name, elemType))),
  ];
  const contrib = nodes.some((n) => n.domain === 'com.microsoft');
  const model: Bytes = [
    ...intField(1, 8), // ir_version 8
    ...stringField(2, 't5cls'),
    ...bytesField(8, [...stringField(1, ''), ...intField(2, 17)]),
    ...(contrib ? bytesField(8, [...stringField(1, 'com.microsoft'), ...intField(2, 1)]) : []),
    ...bytesField(7, graph),
  ];
  return Uint8Array.from(model);
}

/**
 * A model computing Y = op(A) · op(B) with numpy batch broadcasting, op = transpose of the last two axes where
 * asked. Without transposes it is the standard `MatMul`; with them ONNX Runtime's contrib
 * `com.microsoft.FusedMatMul`, which hands the transposes to its GEMM instead of copying the operands.
 */
export function matMulModel(transposeA: boolean, transposeB: boolean, elemType = ONNX_FLOAT): Uint8Array {
  const fused = transposeA || transposeB;
  const node: OnnxNode = fused
    ? {
        op: 'FusedMatMul',
        domain: 'com.microsoft',
        inputs: ['A', 'B'],
        outputs: ['Y'],
        attributes: { transA: transposeA ? 1 : 0, transB: transposeB ? 1 : 0 },
      }
    : { op: 'MatMul', inputs: ['A', 'B'], outputs: ['Y'] };
  return onnxModel([node], ['A', 'B'], ['Y'], elemType);
}

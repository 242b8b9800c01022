/**
 * ONNX models of a few nodes for the native kernels, encoded by the shared ONNX encoder (src/protobuf/onnx_model.ts),
 * so no protobuf library is involved. Graph inputs and outputs are declared with an element type and no shape (any
 * rank, any size), so one session serves every shape.
 */
import { encodeModel, type ElemType, type Initializer, type OnnxNode, type OpsetImport } from '../../protobuf/onnx_model.js';
import { messageBytes } from '../../protobuf/wire.js';

export type { AttributeValue, OnnxNode } from '../../protobuf/onnx_model.js';

const STANDARD_OPSET: OpsetImport = { domain: '', version: 17 };
const CONTRIB_OPSET: OpsetImport = { domain: 'com.microsoft', version: 1 };

/** A constant 1-D int64 tensor. */
function int64Initializer(name: string, values: readonly number[]): Initializer {
  const data = new Uint8Array(8 * values.length);
  const view = new DataView(data.buffer);
  values.forEach((v, i) => view.setBigInt64(8 * i, BigInt(v), true));
  return { name, type: 'int64', dims: [values.length], data };
}

/**
 * A model of `nodes` (in topological order) with graph inputs and outputs of `elemType` and any shape; an empty
 * input name in a node stands for an optional input left out; `constants` are 1-D int64 initializers (shapes for
 * Reshape). Standard operators at opset 17, contrib operators at 1; nodes are named `n<index>` unless named.
 */
export function onnxModel(
  nodes: OnnxNode[],
  inputs: string[],
  outputs: string[],
  elemType: ElemType = 'float32',
  constants: Record<string, readonly number[]> = {},
): Uint8Array {
  const graph = {
    name: 't5cls',
    nodes: nodes.map((node, i) => ({ ...node, name: node.name ?? `n${i}` })),
    inputs: inputs.map((name) => ({ name, type: elemType })),
    outputs: outputs.map((name) => ({ name, type: elemType })),
    initializers: Object.entries(constants).map(([name, values]) => int64Initializer(name, values)),
  };
  const contrib = nodes.some((n) => n.domain === CONTRIB_OPSET.domain);
  return messageBytes(encodeModel({ graph, opsets: contrib ? [STANDARD_OPSET, CONTRIB_OPSET] : [STANDARD_OPSET] }));
}

/**
 * A model computing Y = op(A) · op(B) with numpy batch broadcasting, op = transpose of the last two axes where
 * asked. Without transposes it is the standard `MatMul`; with them ONNX Runtime's contrib
 * `com.microsoft.FusedMatMul`, which hands the transposes to its GEMM instead of copying the operands.
 */
export function matMulModel(transposeA: boolean, transposeB: boolean, elemType: ElemType = 'float32'): Uint8Array {
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

/**
 * Hand-encoded ONNX models of one matrix-product node: the native matmul path needs only these, so no protobuf
 * library is involved. Inputs `A` and `B` and output `Y` are declared with an element type and no shape (any rank,
 * any size), so one session serves every shape and numpy-style batch broadcasting.
 *
 * Wire format reference: onnx/onnx.proto (ModelProto, GraphProto, NodeProto, ValueInfoProto, TypeProto,
 * AttributeProto, OperatorSetIdProto).
 */

/** TensorProto.DataType values. */
export const ONNX_FLOAT = 1;

type Bytes = number[];

function varint(value: number): Bytes {
  const out: Bytes = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

function tag(field: number, wireType: 0 | 2): Bytes {
  return varint(field * 8 + wireType);
}

function intField(field: number, value: number): Bytes {
  return [...tag(field, 0), ...varint(value)];
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

/** AttributeProto{name=1, i=3, type=20 (INT = 2)}. */
function intAttribute(name: string, value: number): Bytes {
  return [...stringField(1, name), ...intField(3, value), ...intField(20, 2)];
}

/**
 * A model computing Y = op(A) · op(B) with numpy batch broadcasting, op = transpose of the last two axes where
 * asked. Without transposes it is the standard `MatMul` (opset 13); with them ONNX Runtime's contrib
 * `com.microsoft.FusedMatMul`, which hands the transposes to its GEMM instead of copying the operands.
 */
export function matMulModel(transposeA: boolean, transposeB: boolean, elemType = ONNX_FLOAT): Uint8Array {
  const fused = transposeA || transposeB;
  const node: Bytes = [
    ...stringField(1, 'A'),
    ...stringField(1, 'B'),
    ...stringField(2, 'Y'),
    ...stringField(3, 'matmul'),
    ...stringField(4, fused ? 'FusedMatMul' : 'MatMul'),
    ...(fused
      ? [
          ...bytesField(5, intAttribute('transA', transposeA ? 1 : 0)),
          ...bytesField(5, intAttribute('transB', transposeB ? 1 : 0)),
        ]
      : []),
    ...(fused ? stringField(7, 'com.microsoft') : []),
  ];
  const graph: Bytes = [
    ...bytesField(1, node),
    ...stringField(2, 'matmul'),
    ...bytesField(11, tensorValueInfo('A', elemType)),
    ...bytesField(11, tensorValueInfo('B', elemType)),
    ...bytesField(12, tensorValueInfo('Y', elemType)),
  ];
  const model: Bytes = [
    ...intField(1, 8), // ir_version 8
    ...stringField(2, 't5cls'),
    ...bytesField(8, [...stringField(1, ''), ...intField(2, 13)]),
    ...(fused ? bytesField(8, [...stringField(1, 'com.microsoft'), ...intField(2, 1)]) : []),
    ...bytesField(7, graph),
  ];
  return Uint8Array.from(model);
}

/** Decoding ONNX model files with protobufjs, independently of our encoder: the subset of onnx/onnx.proto we write. */
import protobuf from 'protobufjs';

const root = protobuf.parse(
  `
  syntax = "proto3";
  message AttributeProto { string name = 1; float f = 2; int64 i = 3; GraphProto g = 6; repeated int64 ints = 8; int32 type = 20; }
  message TensorProto { repeated int64 dims = 1; int32 data_type = 2; string name = 8; bytes raw_data = 9; }
  message TensorShapeProto { message Dimension { int64 dim_value = 1; string dim_param = 2; } repeated Dimension dim = 1; }
  message TypeProto { message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; } Tensor tensor_type = 1; }
  message ValueInfoProto { string name = 1; TypeProto type = 2; }
  message NodeProto { repeated string input = 1; repeated string output = 2; string name = 3; string op_type = 4;
    repeated AttributeProto attribute = 5; string domain = 7; }
  message GraphProto { repeated NodeProto node = 1; string name = 2; repeated TensorProto initializer = 5;
    repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12; }
  message OperatorSetIdProto { string domain = 1; int64 version = 2; }
  message ModelProto { int64 ir_version = 1; string producer_name = 2; string producer_version = 3; GraphProto graph = 7;
    repeated OperatorSetIdProto opset_import = 8; }
`,
  { keepCase: true },
).root;

export interface DecodedValueInfo {
  name: string;
  type: { tensor_type: { elem_type: number; shape?: { dim?: { dim_value?: number; dim_param?: string }[] } } };
}

export interface DecodedGraph {
  name: string;
  node: { input: string[]; output: string[]; name: string; op_type: string; domain?: string; attribute: { name: string; g?: DecodedGraph; ints?: number[]; i?: number }[] }[];
  initializer: { dims: number[]; data_type: number; name: string; raw_data?: Uint8Array }[];
  input: DecodedValueInfo[];
  output: DecodedValueInfo[];
}

export interface DecodedModel {
  ir_version: number;
  producer_name: string;
  opset_import: { domain?: string; version: number }[];
  graph: DecodedGraph;
}

export function decodeOnnx(bytes: Uint8Array): DecodedModel {
  const Model = root.lookupType('ModelProto');
  return Model.toObject(Model.decode(bytes), { longs: Number, defaults: false, arrays: true }) as DecodedModel;
}

/** Every node of a graph and of its subgraphs (If branches). */
export function allNodes(g: DecodedGraph): DecodedGraph['node'] {
  return g.node.flatMap((n) => [n, ...n.attribute.flatMap((a) => (a.g ? allNodes(a.g) : []))]);
}

/** A value's shape as numbers and names. */
export function shapeOf(v: DecodedValueInfo): (number | string)[] | undefined {
  return v.type.tensor_type.shape?.dim?.map((d) => d.dim_param ?? d.dim_value ?? 0);
}

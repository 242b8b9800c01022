/**
 * Building an ONNX graph node by node: each call adds a node and returns the name of its output, so graph code
 * reads like the math it computes. Names are unique across a graph and its subgraphs (one shared counter). Small
 * constants live in the main graph, where subgraphs see them too; a weight lives in the graph that registers it
 * first (a subgraph's own weights stay in it: ONNX Runtime fuses DequantizeLinear → MatMul only when the
 * quantized weight is an initializer of the same graph).
 */
import type { Graph, Initializer, OnnxNode, AttributeValue, ValueInfo } from '../protobuf/onnx_model.js';

interface Scope {
  counter: number;
  /** Every initializer by name, with the builder whose graph holds it. */
  owners: Map<string, { init: Initializer; owner: GraphBuilder }>;
  main?: GraphBuilder;
}

export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];

  private constructor(private readonly scope: Scope) {
    scope.main ??= this;
  }

  static create(): GraphBuilder {
    return new GraphBuilder({ counter: 0, owners: new Map() });
  }

  /** A builder for a subgraph (an If branch) that shares this graph's names and constants. */
  subgraph(): GraphBuilder {
    return new GraphBuilder(this.scope);
  }

  /** A fresh value name. */
  name(hint: string): string {
    return `${hint}_${this.scope.counter++}`;
  }

  /** Adds a node with one output and returns that output's name (`output` when given, else a fresh one). */
  op(op: string, inputs: string[], attributes?: Record<string, AttributeValue>, output?: string): string {
    const out = output ?? this.name(op);
    this.nodes.push({ op, inputs, outputs: [out], ...(attributes ? { attributes } : {}) });
    return out;
  }

  /** Adds a node with several named outputs. */
  opWithOutputs(op: string, inputs: string[], outputs: string[], attributes?: Record<string, AttributeValue>): string[] {
    this.nodes.push({ op, inputs, outputs, ...(attributes ? { attributes } : {}) });
    return outputs;
  }

  /** Registers a weight once (by name) in this builder's graph and returns its name. */
  initializer(init: Initializer): string {
    return this.register(init, this);
  }

  private register(init: Initializer, owner: GraphBuilder): string {
    const known = this.scope.owners.get(init.name);
    if (!known) {
      this.scope.owners.set(init.name, { init, owner });
      return init.name;
    }
    if (known.init.type !== init.type || known.init.dims.join() !== init.dims.join()) {
      throw new Error(`initializer ${init.name} registered twice with different types or shapes`);
    }
    if (known.owner !== this && known.owner !== this.scope.main) throw new Error(`initializer ${init.name} is held by another subgraph`);
    return init.name;
  }

  /** A small constant, held by the main graph. */
  private constant(init: Initializer): string {
    return this.register(init, this.scope.main ?? this);
  }

  /** An int64 constant: a 1-D tensor of `values`, or a scalar. */
  int64(values: number[] | number): string {
    const list = typeof values === 'number' ? [values] : values;
    const name = `const_i64_${typeof values === 'number' ? 's' : 'v'}_${list.join('_').replace(/-/g, 'm')}`;
    const data = new Uint8Array(8 * list.length);
    const view = new DataView(data.buffer);
    list.forEach((v, i) => view.setBigInt64(8 * i, BigInt(v), true));
    return this.constant({ name, type: 'int64', dims: typeof values === 'number' ? [] : [list.length], data });
  }

  /** A float32 scalar constant. */
  float(value: number): string {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setFloat32(0, value, true);
    const name = `const_f32_${String(value).replace(/-/g, 'm').replace(/\+/g, 'p').replace(/\./g, 'd')}`;
    return this.constant({ name, type: 'float32', dims: [], data });
  }

  /** The graph of this builder's nodes, with the initializers it holds. */
  graph(name: string, inputs: ValueInfo[], outputs: ValueInfo[]): Graph {
    const initializers = [...this.scope.owners.values()].filter((o) => o.owner === this).map((o) => o.init);
    return { name, nodes: this.nodes, inputs, outputs, initializers };
  }
}

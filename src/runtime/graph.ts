/**
 * A small typed builder of ONNX graphs (IR 8, opset 17), written as protobuf with onnx-proto. Every
 * node gets a name from the scopes it was built in (e.g. `h.3.attn/MatMul_12`), so that an error
 * of ONNX Runtime about a node points at the model code that made it.
 */
import onnxProto, { type onnx as proto } from "onnx-proto";

const { onnx } = onnxProto;

export const IR_VERSION = 8;
export const OPSET = 17;

/** The name of a value (graph input, constant or node output) of the graph being built. */
export type Value = string;
export type ElementType = "float32" | "float64" | "int64" | "bool";
/** A fixed size or a symbolic one (`batch`, `tokens`) that every run may choose. */
export type Dim = number | string;

/** Attribute values: integers become INT(S), other numbers FLOAT; `floatAttr` forces FLOAT. */
export type Attribute = number | number[] | string | FloatAttribute | TensorAttribute;
export interface FloatAttribute {
  float: number;
}
/** A one-element tensor attribute, e.g. ConstantOfShape's fill value. */
export interface TensorAttribute {
  tensor: { type: ElementType; value: number };
}
export const floatAttr = (float: number): FloatAttribute => ({ float });

const ELEMENT = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float64: onnx.TensorProto.DataType.DOUBLE,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
} as const;

/** A graph that failed to build or to load: names the architecture, the graph and the node. */
export class GraphBuildError extends Error {
  override readonly name = "GraphBuildError";
  constructor(
    readonly architecture: string,
    readonly graph: string,
    readonly node: string | undefined,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${architecture} graph "${graph}"${node ? `, node ${node}` : ""}: ${detail}`, options);
  }
}

function valueInfo(name: string, type: ElementType, dims: readonly Dim[]): proto.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEMENT[type],
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function tensorProto(name: string, type: ElementType, dims: readonly number[], values: readonly number[]): proto.ITensorProto {
  const bytes =
    type === "float32"
      ? new Float32Array(values)
      : type === "float64"
        ? new Float64Array(values)
        : type === "int64"
          ? BigInt64Array.from(values, (v) => BigInt(v))
          : Uint8Array.from(values);
  return { name, dataType: ELEMENT[type], dims: [...dims], rawData: new Uint8Array(bytes.buffer) };
}

function attributeProto(name: string, value: Attribute): proto.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === "string") return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if (typeof value === "number") return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  if ("float" in value) return { name, type: T.FLOAT, f: value.float };
  return { name, type: T.TENSOR, t: tensorProto("", value.tensor.type, [1], [value.tensor.value]) };
}

export class GraphBuilder {
  private readonly inputs: proto.IValueInfoProto[] = [];
  private readonly outputs: proto.IValueInfoProto[] = [];
  private readonly nodes: proto.INodeProto[] = [];
  private readonly initializers: proto.ITensorProto[] = [];
  private readonly defined = new Set<Value>();
  private readonly constants = new Map<string, Value>();
  private readonly scopes: string[] = [];
  private count = 0;

  /** `architecture` and `graph` (the variant, e.g. "capture") name the graph in every error. */
  constructor(
    readonly architecture: string,
    readonly graph: string,
  ) {}

  input(name: string, type: ElementType, dims: readonly Dim[]): Value {
    this.define(name, undefined);
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** A small constant, stored once however often it is asked for. */
  constant(type: ElementType, values: number | readonly number[]): Value {
    const dims = typeof values === "number" ? [] : [values.length];
    const list = typeof values === "number" ? [values] : values;
    const key = `${type}:${dims.length}:${list.join(",")}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = `const_${this.constants.size}`;
    this.define(name, undefined);
    this.initializers.push(tensorProto(name, type, dims, list));
    this.constants.set(key, name);
    return name;
  }

  /** Builds the nodes made inside `build` under the name `scope` (nested scopes join with `/`). */
  scope<T>(scope: string, build: () => T): T {
    this.scopes.push(scope);
    try {
      return build();
    } finally {
      this.scopes.pop();
    }
  }

  /** A node with `outputs` results; an empty input name skips an optional input. */
  node(opType: string, inputs: readonly Value[], attributes: Record<string, Attribute> = {}, outputs = 1): Value[] {
    const name = [...this.scopes, `${opType}_${this.count++}`].join("/");
    for (const input of inputs) {
      if (input !== "" && !this.defined.has(input)) {
        throw new GraphBuildError(this.architecture, this.graph, name, `input "${input}" is not defined before this ${opType} node`);
      }
    }
    const results = Array.from({ length: outputs }, (_, i) => (outputs === 1 ? name : `${name}:${i}`));
    results.forEach((r) => this.define(r, name));
    this.nodes.push({
      name,
      opType,
      input: [...inputs],
      output: results,
      attribute: Object.entries(attributes).map(([key, value]) => attributeProto(key, value)),
    });
    return results;
  }

  /** A node with one result. */
  op(opType: string, inputs: readonly Value[], attributes?: Record<string, Attribute>): Value {
    return this.node(opType, inputs, attributes)[0];
  }

  /** Exposes `value` as the graph output `name`. */
  output(value: Value, name: string, type: ElementType, dims: readonly Dim[]): void {
    if (!this.defined.has(value)) throw new GraphBuildError(this.architecture, this.graph, undefined, `output "${name}" refers to undefined value "${value}"`);
    this.define(name, undefined);
    this.nodes.push({ name: `output/${name}`, opType: "Identity", input: [value], output: [name] });
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** The serialised ModelProto, as InferenceSession.create takes it. */
  toBytes(): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: "influence-graph",
      opsetImport: [{ domain: "", version: OPSET }],
      graph: {
        name: `${this.architecture}.${this.graph}`,
        input: this.inputs,
        output: this.outputs,
        node: this.nodes,
        initializer: this.initializers,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  private define(name: Value, node: string | undefined): void {
    if (this.defined.has(name)) throw new GraphBuildError(this.architecture, this.graph, node, `value "${name}" is defined twice`);
    this.defined.add(name);
  }
}

import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/**
 * Folds p' = sigmoid(a + b * z) into each Sigmoid-fed probability output (z = logit p), so names,
 * shapes and (b > 0) ranking stay; read and written with ONNX's own onnx.proto, vendored here.
 */

const PROTO = fileURLToPath(new URL('./onnx.proto', import.meta.url));
/** Nodes that pass a tensor's values through unchanged: a probability may be reshaped after its Sigmoid. */
const SHAPE_ONLY = new Set(['Squeeze', 'Unsqueeze', 'Reshape', 'Identity', 'Flatten']);
const FLOAT = 1; // TensorProto.DataType.FLOAT

interface NodeProto {
  opType: string;
  input: string[];
  output: string[];
  name?: string;
}
interface GraphProto {
  node: NodeProto[];
  output: Array<{ name: string }>;
  initializer: unknown[];
}

export class GraphFoldError extends Error {
  override readonly name = 'GraphFoldError';
}

let modelType: protobuf.Type | undefined;
function onnxModelType(): protobuf.Type {
  modelType ??= protobuf.loadSync(PROTO).lookupType('onnx.ModelProto');
  return modelType;
}

/** The graph outputs that are a Sigmoid's values, each with that Sigmoid node. */
function probabilityOutputs(graph: GraphProto): Map<string, NodeProto> {
  const producer = new Map<string, NodeProto>();
  for (const node of graph.node) for (const out of node.output) producer.set(out, node);
  const found = new Map<string, NodeProto>();
  for (const { name } of graph.output) {
    let node = producer.get(name);
    while (node && SHAPE_ONLY.has(node.opType)) node = producer.get(node.input[0] ?? '');
    if (node?.opType === 'Sigmoid') found.set(name, node);
  }
  return found;
}

export interface FoldResult {
  bytes: Uint8Array;
  /** The graph outputs now recalibrated. */
  outputs: string[];
}

/** Returns the model with p' = sigmoid(intercept + slope * logit(p)) on every probability output. */
export function foldRecalibration(
  model: Uint8Array,
  opts: { intercept: number; slope: number; requiredOutput: string },
): FoldResult {
  if (!(opts.slope > 0) || !Number.isFinite(opts.intercept))
    throw new GraphFoldError(
      'the recalibration slope must be > 0 and the intercept finite: the ranking must not change',
    );
  const type = onnxModelType();
  const decoded = type.decode(model) as unknown as { graph: GraphProto };
  const { graph } = decoded;
  const outputs = probabilityOutputs(graph);
  if (!outputs.has(opts.requiredOutput))
    throw new GraphFoldError(
      `the graph's output ${opts.requiredOutput} does not come from a Sigmoid: there is no logit to recalibrate`,
    );
  const names = new Set(graph.node.flatMap((n) => n.output));
  const unique = (base: string): string => {
    let name = base;
    for (let i = 1; names.has(name); i++) name = `${base}_${i}`;
    names.add(name);
    return name;
  };
  const slopeName = unique('recalibration_slope');
  const interceptName = unique('recalibration_intercept');
  graph.initializer.push(
    { name: slopeName, dataType: FLOAT, dims: [], floatData: [opts.slope] },
    { name: interceptName, dataType: FLOAT, dims: [], floatData: [opts.intercept] },
  );
  for (const sigmoid of new Set(outputs.values())) {
    const z = sigmoid.input[0] as string;
    const scaled = unique(`${z}_recalibration_scaled`);
    const shifted = unique(`${z}_recalibrated`);
    const at = graph.node.indexOf(sigmoid);
    // Nodes stay in topological order: the two new ones go just before the Sigmoid they feed.
    graph.node.splice(
      at,
      0,
      { opType: 'Mul', input: [z, slopeName], output: [scaled], name: unique('recalibration_mul') },
      { opType: 'Add', input: [scaled, interceptName], output: [shifted], name: unique('recalibration_add') },
    );
    sigmoid.input[0] = shifted;
  }
  return {
    bytes: type.encode(type.fromObject(decoded as unknown as Record<string, unknown>)).finish(),
    outputs: [...outputs.keys()],
  };
}

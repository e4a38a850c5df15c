// Runs an exported model with onnxruntime-node (the runtime the service uses) so the Python
// tests can check ONNX Runtime against PyTorch; there is no onnxruntime for Python here.
// Usage: node training/tests/ort_run.mjs model.onnx < input.json
//   input:  {"values": [[[...V], ...time], ...batch], "statics": [[...S], ...batch], "lengths": [...batch],
//            "note"?: [[...note_dim], ...batch]}, null for NaN (a shipped graph, models/README.md);
//           or {"x": [[[...n_inputs], ...time], ...batch], "lengths", "note"?} (the network alone, training/export.py)
//   output: {"probability": [...batch]} on stdout, and "x" (flat) when the input says "fetchX": true
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

const modelPath = process.argv[2];
if (!modelPath) {
  process.stderr.write('usage: node ort_run.mjs model.onnx < input.json\n');
  process.exit(2);
}
const input = JSON.parse(readFileSync(0, 'utf8'));
const nan = (v) => (v === null ? NaN : v);
/** A nested array [batch][time][width] (or [batch][width]) as one flat typed array with its dims. */
function tensor(type, nested) {
  const dims = [];
  for (let level = nested; Array.isArray(level); level = level[0]) dims.push(level.length);
  const flat = nested.flat(dims.length - 1).map(nan);
  if (flat.length !== dims.reduce((a, b) => a * b, 1)) throw new Error('ragged input array');
  return new ort.Tensor(type, type === 'float64' ? Float64Array.from(flat) : Float32Array.from(flat), dims);
}
const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
const feeds = { lengths: new ort.Tensor('int32', Int32Array.from(input.lengths), [input.lengths.length]) };
if (input.x) feeds.x = tensor('float32', input.x);
else {
  feeds.values = tensor('float64', input.values);
  feeds.statics = tensor('float64', input.statics);
}
if (input.note) feeds.note = tensor('float32', input.note);
const out = await session.run(feeds, input.fetchX ? ['probability', 'x'] : ['probability']);
const answer = { probability: Array.from(out.probability.data), dims: out.probability.dims };
if (input.fetchX) Object.assign(answer, { x: Array.from(out.x.data), xDims: out.x.dims });
process.stdout.write(JSON.stringify(answer));
await session.release();

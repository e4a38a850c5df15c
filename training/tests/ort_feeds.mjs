// Runs an ONNX graph with onnxruntime-node (the service's runtime) on any named feeds, several
// runs in one session (the step graph is stepped hour by hour): training/tests/ort_graph.py.
// Usage: node training/tests/ort_feeds.mjs model.onnx < input.json
//   input:  {"fetch": [names], "runs": [{name: {"type": "float64"|"float32"|"int32", "dims": [...], "data": [flat, null = NaN]}}],
//            "feedback"?: {output: input}}: each run after the first also takes those inputs from the run before's outputs
//   output: {"runs": [{name: {"dims": [...], "data": [flat, null = NaN]}}]} on stdout
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

const ARRAYS = { float64: Float64Array, float32: Float32Array, int32: Int32Array };
const modelPath = process.argv[2];
if (!modelPath) {
  process.stderr.write('usage: node ort_feeds.mjs model.onnx < input.json\n');
  process.exit(2);
}
const input = JSON.parse(readFileSync(0, 'utf8'));
const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
const runs = [];
let previous;
for (const run of input.runs) {
  const feeds = {};
  for (const [name, t] of Object.entries(run)) {
    feeds[name] = new ort.Tensor(t.type, ARRAYS[t.type].from(t.data.map((v) => (v === null ? NaN : v))), t.dims);
  }
  if (previous !== undefined) for (const [from, to] of Object.entries(input.feedback ?? {})) feeds[to] = previous[from];
  const out = await session.run(feeds, input.fetch);
  previous = out;
  const answer = {};
  for (const name of input.fetch) {
    answer[name] = { dims: out[name].dims, data: Array.from(out[name].data, (v) => (Number.isNaN(v) ? null : v)) };
  }
  runs.push(answer);
}
process.stdout.write(JSON.stringify({ runs }));
await session.release();

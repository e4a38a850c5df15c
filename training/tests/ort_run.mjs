// Runs an exported model with onnxruntime-node (the runtime the service uses) so the Python
// tests can check ONNX Runtime against PyTorch; there is no onnxruntime for Python here.
// Usage: node training/tests/ort_run.mjs model.onnx < input.json
//   input:  {"x": [[[...n_inputs], ...time], ...batch], "lengths": [...batch], "note"?: [[...note_dim], ...batch]}
//   output: {"probability": [...batch]} on stdout
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

const modelPath = process.argv[2];
if (!modelPath) {
  process.stderr.write('usage: node ort_run.mjs model.onnx < input.json\n');
  process.exit(2);
}
const input = JSON.parse(readFileSync(0, 'utf8'));
const batch = input.x.length;
const time = input.x[0].length;
const width = input.x[0][0].length;
const x = new Float32Array(batch * time * width);
for (let b = 0; b < batch; b++) {
  for (let t = 0; t < time; t++) {
    const row = input.x[b][t];
    if (row.length !== width) throw new Error(`x[${b}][${t}] has ${row.length} values, expected ${width}`);
    x.set(row, (b * time + t) * width);
  }
}
const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
const feeds = {
  x: new ort.Tensor('float32', x, [batch, time, width]),
  lengths: new ort.Tensor('int32', Int32Array.from(input.lengths), [batch]),
};
if (input.note) feeds.note = new ort.Tensor('float32', Float32Array.from(input.note.flat()), [batch, input.note[0].length]);
const out = await session.run(feeds);
process.stdout.write(JSON.stringify({ probability: Array.from(out.probability.data), dims: out.probability.dims }));
await session.release();

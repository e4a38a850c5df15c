/**
 * What the graph's input tensor costs on one thread with the service's session options: the
 * tensor alone (training.export's input_tensor_onnx for the model's manifest, written by
 * Python into a temporary file, since ORT runs a whole graph whatever is fetched) beside the
 * shipped graph. Needs /usr/bin/python3 with torch and onnx (npm run test:python installs them).
 *   node --import tsx bench/input-tensor.ts [--model PATH] [--batch 1,64] [--hours 48] [--runs 300]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { sessionOptions } from '../src/inference/providers.js';
import { defaultModelPath, describeModel, syntheticValues } from './engine.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    batch: { type: 'string', default: '1,64' },
    hours: { type: 'string' },
    runs: { type: 'string', default: '300' },
  },
});
const model = describeModel(args.model ?? defaultModelPath());
const hours = Number(args.hours ?? model.maxHours);
const runs = Number(args.runs);
const dir = mkdtempSync(join(tmpdir(), 'input-tensor-'));
const tensorPath = join(dir, 'input-tensor.onnx');
const write = `import json, onnx, sys
from training.export import input_tensor_onnx
onnx.save(input_tensor_onnx(json.load(open(sys.argv[1]))), sys.argv[2])`;
execFileSync('/usr/bin/python3', ['-c', write, join(model.modelPath, '..', 'manifest.json'), tensorPath], {
  cwd: fileURLToPath(new URL('../', import.meta.url)),
  stdio: ['ignore', 'ignore', 'inherit'],
});
const options = sessionOptions('cpu', { intraOpThreads: 1, allowSpinning: false });
const tensorSession = await ort.InferenceSession.create(tensorPath, options);
const session = await ort.InferenceSession.create(model.modelPath, options);
rmSync(dir, { recursive: true, force: true });

/** Mean milliseconds of one run of `on`, fetching `fetch`, after a warm-up. */
async function msPerRun(on: ort.InferenceSession, feeds: Record<string, ort.Tensor>, fetch: string): Promise<number> {
  for (let i = 0; i < 20; i++) await on.run(feeds, [fetch]);
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await on.run(feeds, [fetch]);
  return (performance.now() - t0) / runs;
}

process.stdout.write(`${model.modelPath}, ${hours}-hour stays, ${runs} runs each, 1 thread\n`);
for (const batch of args.batch.split(',').map(Number)) {
  const { nVariables, nStatics } = model;
  const feeds: Record<string, ort.Tensor> = {
    [model.inputNames.values]: new ort.Tensor('float64', syntheticValues(batch * hours * nVariables), [
      batch,
      hours,
      nVariables,
    ]),
    [model.inputNames.statics]: new ort.Tensor('float64', new Float64Array(batch * nStatics).fill(1), [
      batch,
      nStatics,
    ]),
    [model.inputNames.lengths]: new ort.Tensor('int32', new Int32Array(batch).fill(hours), [batch]),
  };
  const { [model.inputNames.lengths]: _lengths, ...tensorFeeds } = feeds;
  const tensor = await msPerRun(tensorSession, tensorFeeds, 'x');
  const whole = await msPerRun(session, feeds, model.outputName);
  process.stdout.write(
    `batch ${String(batch).padStart(4)}: input tensor ${tensor.toFixed(3)} ms (${((tensor / batch) * 1000).toFixed(1)} us per stay), whole graph ${whole.toFixed(3)} ms, tensor share ${((100 * tensor) / whole).toFixed(0)}%\n`,
  );
}
await Promise.all([tensorSession.release(), session.release()]);

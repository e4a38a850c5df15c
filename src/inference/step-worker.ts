/** Entry point of a step worker thread (started by step-engine.ts): one session of a step graph. */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { conciseReason, openSession } from './providers.js';
import type { FromStepWorker, StepInputs, StepOutputs, StepWorkerInit, ToStepWorker } from './step-protocol.js';

function post(port: MessagePort, message: FromStepWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

async function serve(port: MessagePort, init: StepWorkerInit): Promise<void> {
  let session: ort.InferenceSession;
  try {
    session = (
      await openSession(init.modelPath, ['cpu'], { intraOpThreads: init.intraOpThreads, allowSpinning: false })
    ).session;
  } catch (error) {
    post(port, { type: 'start-failed', reason: conciseReason(error) });
    port.close();
    return;
  }
  post(port, { type: 'ready' });
  // One request at a time: a session's run() blocks this thread anyway.
  let chain: Promise<void> = Promise.resolve();
  port.on('message', (message: ToStepWorker) => {
    if (message.type === 'close') {
      chain = chain.then(async () => {
        await session.release();
        port.close();
      });
      return;
    }
    chain = chain.then(async () => {
      try {
        const out = await steps(session, init, message);
        post(port, { type: 'result', id: message.id, ...out }, [
          out.probabilities.buffer as ArrayBuffer,
          out.state.buffer as ArrayBuffer,
          out.carry.buffer as ArrayBuffer,
        ]);
      } catch (error) {
        post(port, { type: 'run-failed', id: message.id, message: conciseReason(error) });
      }
    });
  });
}

/** Steps the hours in order, each hour's state and carry fed to the next. */
async function steps(session: ort.InferenceSession, names: StepWorkerInit, input: StepInputs): Promise<StepOutputs> {
  const V = input.nVariables;
  const probabilities = new Float32Array(input.hours);
  let state = input.state;
  let carry = input.carry;
  const statics = new ort.Tensor('float64', input.statics, [1, input.statics.length]);
  const note = input.note && new ort.Tensor('float32', input.note, [1, input.note.length]);
  for (let t = 0; t < input.hours; t++) {
    const feeds: Record<string, ort.Tensor> = {
      [names.inputs.values]: new ort.Tensor('float64', input.values.slice(t * V, (t + 1) * V), [1, 1, V]),
      [names.inputs.statics]: statics,
      [names.inputs.state]: new ort.Tensor('float32', state, [1, ...input.stateShape]),
      [names.inputs.carry]: new ort.Tensor('float32', carry, [1, ...input.carryShape]),
    };
    if (names.inputs.note !== undefined && note !== undefined) feeds[names.inputs.note] = note;
    const out = await session.run(feeds);
    const p = out[names.outputs.probability];
    const s = out[names.outputs.state];
    const c = out[names.outputs.carry];
    if (p === undefined || s === undefined || c === undefined) throw new Error('the step graph lacks an output');
    probabilities[t] = (p.data as Float32Array)[0] as number;
    // Copies we own: ORT owns its output tensors' memory.
    state = new Float32Array(s.data as Float32Array);
    carry = new Float32Array(c.data as Float32Array);
    for (const tensor of Object.values(out)) tensor.dispose();
  }
  return { probabilities, state, carry };
}

if (parentPort === null) throw new Error('step-worker.ts must run in a worker thread');
void serve(parentPort, workerData as StepWorkerInit);

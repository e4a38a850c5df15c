/**
 * The inside of an inference worker: one ONNX Runtime session, one batch at a time.
 * session.run() blocks the thread it runs on for the whole batch, which is why it lives
 * here and not on the event loop (the binding's native call is synchronous).
 */
import type { MessagePort } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { isWhole, type FromWorker, type RunRequest, type ToWorker, type WorkerInit } from './protocol.js';
import { NoProviderError, conciseReason, openSession } from './providers.js';

export interface HostHooks {
  /** Called before each run; lets an instrumented worker entry (tests) misbehave on cue. */
  beforeRun?(request: RunRequest): void;
}

function post(port: MessagePort, message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

export async function serve(port: MessagePort, init: WorkerInit, hooks: HostHooks = {}): Promise<void> {
  let session: ort.InferenceSession;
  try {
    const opened = await openSession(init.modelPath, init.providers, {
      intraOpThreads: init.intraOpThreads,
      allowSpinning: init.allowSpinning,
    });
    session = opened.session;
    post(port, { type: 'ready', provider: opened.provider, failures: opened.failures });
  } catch (error) {
    const failures =
      error instanceof NoProviderError ? error.failures : [{ provider: 'cpu' as const, reason: conciseReason(error) }];
    post(port, { type: 'start-failed', failures });
    port.close();
    return;
  }

  // Runs are chained so that a second message can never start a run while one is in progress.
  let chain: Promise<void> = Promise.resolve();
  port.on('message', (message: ToWorker) => {
    if (message.type === 'close') {
      chain = chain.then(async () => {
        await session.release();
        port.close();
      });
      return;
    }
    chain = chain.then(() => runOne(port, session, init, message, hooks));
  });
}

async function runOne(
  port: MessagePort,
  session: ort.InferenceSession,
  init: WorkerInit,
  request: RunRequest,
  hooks: HostHooks,
): Promise<void> {
  const { id, batch, time } = request;
  let values: ort.Tensor | undefined;
  let statics: ort.Tensor | undefined;
  let lengths: ort.Tensor | undefined;
  let note: ort.Tensor | undefined;
  let output: ort.Tensor | undefined;
  let perHourOutput: ort.Tensor | undefined;
  try {
    hooks.beforeRun?.(request);
    values = new ort.Tensor('float64', request.values, [batch, time, request.nVariables]);
    statics = new ort.Tensor('float64', request.statics, [batch, request.nStatics]);
    lengths = new ort.Tensor('int32', request.lengths, [batch]);
    const names = init.inputNames;
    const feeds: Record<string, ort.Tensor> = {
      [names.values]: values,
      [names.statics]: statics,
      [names.lengths]: lengths,
    };
    if (names.note !== undefined && request.note !== undefined) {
      note = new ort.Tensor('float32', request.note, [batch, request.noteDim ?? 0]);
      feeds[names.note] = note;
    }
    const perHourName = request.perHour === true ? init.perHourOutputName : undefined;
    if (request.perHour === true && perHourName === undefined) throw new Error('this model has no per-hour output');
    const outputs = await session.run(
      feeds,
      perHourName === undefined ? [init.outputName] : [init.outputName, perHourName],
    );
    output = outputs[init.outputName];
    if (output === undefined || output.type !== 'float32' || output.data.length !== batch) {
      throw new Error(`output "${init.outputName}" is not float32[${batch}]`);
    }
    // A fresh copy (batch floats, tiny) that we own and can transfer; ORT owns the tensor's memory.
    const probabilities = new Float32Array(output.data as Float32Array);
    let perHour: Float32Array | undefined;
    if (perHourName !== undefined) {
      perHourOutput = outputs[perHourName];
      if (perHourOutput === undefined || perHourOutput.type !== 'float32' || perHourOutput.data.length !== batch * time)
        throw new Error(`output "${perHourName}" is not float32[${batch}, ${time}]`);
      perHour = new Float32Array(perHourOutput.data as Float32Array);
    }
    // Done with the input: hand its buffer back so the main thread can fill it again rather
    // than allocate (and fault in) a new one per batch.
    values.dispose();
    values = undefined;
    const input = request.values;
    const giveBack = isWhole(input);
    const transfer: ArrayBuffer[] = [probabilities.buffer as ArrayBuffer];
    if (giveBack) transfer.push(input.buffer);
    if (perHour !== undefined) transfer.push(perHour.buffer as ArrayBuffer);
    post(
      port,
      {
        type: 'result',
        id,
        probabilities,
        ...(giveBack ? { values: input } : {}),
        ...(perHour === undefined ? {} : { perHour }),
      },
      transfer,
    );
  } catch (error) {
    post(port, { type: 'run-failed', id, message: conciseReason(error) });
  } finally {
    values?.dispose();
    statics?.dispose();
    lengths?.dispose();
    note?.dispose();
    output?.dispose();
    perHourOutput?.dispose();
  }
}

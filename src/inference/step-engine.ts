/**
 * A model version's step graph in a worker thread of its own: an encounter's new hour costs one
 * step of the recurrent state, not a rerun of the stay. A worker that dies fails its runs; the
 * caller falls back to rescoring the stay (src/scoring/encounters.ts).
 */
import { EngineRunError } from './errors.js';
import { newWorker, siblingModule } from './ts-worker.js';
import type { FromStepWorker, StepInputs, StepOutputs, StepWorkerInit } from './step-protocol.js';

export type { StepInputs, StepOutputs, StepGraphNames } from './step-protocol.js';

export interface StepEngine {
  run(input: StepInputs): Promise<StepOutputs>;
  close(): Promise<void>;
}

export async function createStepEngine(init: StepWorkerInit): Promise<StepEngine> {
  const worker = newWorker(siblingModule(import.meta.url, 'step-worker'), init);
  const pending = new Map<number, { resolve(out: StepOutputs): void; reject(error: Error): void }>();
  let nextId = 1;
  let dead: string | undefined;
  const failAll = (why: string): void => {
    dead = why;
    for (const run of pending.values()) run.reject(new EngineRunError(why));
    pending.clear();
  };
  await new Promise<void>((resolve, reject) => {
    const onMessage = (message: FromStepWorker): void => {
      if (message.type === 'ready') resolve();
      else if (message.type === 'start-failed') reject(new Error(`could not open the step graph: ${message.reason}`));
      else return;
      worker.off('message', onMessage);
    };
    worker.on('message', onMessage);
    worker.once('exit', (code) => reject(new Error(`the step worker exited while starting (code ${code})`)));
  });
  worker.on('message', (message: FromStepWorker) => {
    if (message.type !== 'result' && message.type !== 'run-failed') return;
    const run = pending.get(message.id);
    pending.delete(message.id);
    if (pending.size === 0) worker.unref();
    if (message.type === 'result')
      run?.resolve({ probabilities: message.probabilities, state: message.state, carry: message.carry });
    else run?.reject(new EngineRunError(`step failed: ${message.message}`));
  });
  worker.on('exit', (code) => failAll(`the step worker stopped (exit code ${code})`));
  // Idle, the worker does not hold the process open; a run in flight does.
  worker.unref();
  return {
    run(input) {
      if (dead !== undefined) return Promise.reject(new EngineRunError(dead));
      const id = nextId++;
      return new Promise<StepOutputs>((resolve, reject) => {
        if (pending.size === 0) worker.ref();
        pending.set(id, { resolve, reject });
        worker.postMessage({ type: 'steps', id, ...input });
      });
    },
    async close() {
      if (dead !== undefined) return;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.ref();
      worker.postMessage({ type: 'close' });
      await exited;
    },
  };
}

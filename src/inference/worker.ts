/** Entry point of an inference worker thread (started by engine.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerInit } from './protocol.js';
import { serve } from './worker-host.js';

if (parentPort === null) throw new Error('worker.ts must run in a worker thread');
void serve(parentPort, workerData as WorkerInit);

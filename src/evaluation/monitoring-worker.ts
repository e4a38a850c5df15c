import { parentPort, workerData } from 'node:worker_threads';
import { monitoringFigures, type Pair, type Unlabelled } from './monitoring.js';

/**
 * Live monitoring's figures in a worker thread: the bootstrap intervals take seconds for tens of
 * thousands of pairs, which on the event loop would stall every request meanwhile.
 */

export interface MonitoringJob {
  pairs: Pair[];
  unlabelled: Unlabelled[];
  threshold: number | null;
}

const job = workerData as MonitoringJob;
parentPort?.postMessage(monitoringFigures(job.pairs, job.unlabelled, job.threshold));

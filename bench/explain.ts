/**
 * Plain against explained scoring through the scoring core (validation, tensors, batcher,
 * engine), the same synthetic 48-hour stays, 64 per call as `MAX_EXPLAINED_PATIENTS` allows.
 * Explained twice: the trajectory from the model's per-hour output (one pass, what the service
 * does) and from one prefix row per hour (what it does for a model without that output).
 */
import { rowCost } from '../src/clinical/explain.js';
import type { ValidPatient } from '../src/clinical/types.js';
import { scorePatients } from '../src/scoring/score.js';
import { batcherSink, scoreStays } from '../src/scoring/score-stays.js';
import { openModelRepository } from '../src/cli/model.js';
import { syntheticPatient } from './payload.js';

export interface ExplainBenchResult {
  hours: number;
  plainStaysPerSecond: number;
  explainedStaysPerSecond: number;
  /** Engine rows per explained stay: the stay and one copy per present variable (one pass). */
  rowsPerExplainedStay: number;
  /** Explained with one prefix row per hour instead of the per-hour output. */
  prefixRowsStaysPerSecond: number;
  rowsPerPrefixExplainedStay: number;
}

const silent = { info() {}, warn() {}, error() {} };

export async function measureExplain(opts: {
  seconds: number;
  hours?: number;
  perCall?: number;
}): Promise<ExplainBenchResult> {
  const hours = opts.hours ?? 48;
  const perCall = opts.perCall ?? 64;
  const patients = Array.from({ length: perCall }, (_, i) => syntheticPatient(hours, 1 + i));
  const models = await openModelRepository({ batchSize: 64, queueSize: 1 << 16, logger: silent });
  try {
    const rate = async (call: () => Promise<unknown>): Promise<number> => {
      await call();
      let stays = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < opts.seconds * 1000) {
        await call();
        stays += patients.length;
      }
      return stays / ((performance.now() - t0) / 1000);
    };
    const plainStaysPerSecond = await rate(() => scorePatients(models, patients, { explain: false }));
    const explainedStaysPerSecond = await rate(() => scorePatients(models, patients, { explain: true }));
    // The prefix-row path: the same core with a sink that has no per-hour output (validated once, outside the loop).
    const lease = models.acquire();
    try {
      const { manifest, batcher, validator } = lease.model;
      const valid = patients.map((p) => {
        const outcome = validator.validate(p);
        if (!outcome.ok) throw new Error('a synthetic bench stay did not validate');
        return outcome.patient;
      });
      const prefixRowsStaysPerSecond = await rate(() =>
        scoreStays(manifest, valid, { submit: (rows) => batcher.submit(rows) }, true),
      );
      const rows = (perHour: boolean): number =>
        valid.reduce((n, p: ValidPatient) => n + rowCost(manifest, p, true, perHour), 0) / valid.length;
      return {
        hours,
        plainStaysPerSecond,
        explainedStaysPerSecond,
        rowsPerExplainedStay: rows(batcherSink(batcher).submitPerHour !== undefined),
        prefixRowsStaysPerSecond,
        rowsPerPrefixExplainedStay: rows(false),
      };
    } finally {
      lease.release();
    }
  } finally {
    await models.close();
  }
}

/**
 * Plain against explained scoring through the scoring core (validation, tensors, batcher,
 * engine), the same synthetic 48-hour stays, 64 per call as `MAX_EXPLAINED_PATIENTS` allows.
 */
import { scorePatients } from '../src/scoring/score.js';
import { openModelRepository } from '../src/cli/model.js';
import { syntheticPatient } from './payload.js';

export interface ExplainBenchResult {
  hours: number;
  plainStaysPerSecond: number;
  explainedStaysPerSecond: number;
  /** Engine rows per explained stay: the stay, its prefixes and one copy per present variable. */
  rowsPerExplainedStay: number;
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
    const rate = async (explain: boolean): Promise<number> => {
      await scorePatients(models, patients, { explain });
      let stays = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < opts.seconds * 1000) {
        await scorePatients(models, patients, { explain });
        stays += patients.length;
      }
      return stays / ((performance.now() - t0) / 1000);
    };
    const plainStaysPerSecond = await rate(false);
    const explainedStaysPerSecond = await rate(true);
    const { outcomes } = await scorePatients(models, patients, { explain: true });
    const rows = outcomes.reduce(
      (n, o) => n + (o.ok ? (o.result.trajectory?.length ?? 0) + (o.result.contributions?.length ?? 0) : 0),
      0,
    );
    return { hours, plainStaysPerSecond, explainedStaysPerSecond, rowsPerExplainedStay: rows / patients.length };
  } finally {
    await models.close();
  }
}

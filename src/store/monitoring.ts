import type { Pair, Unlabelled } from '../evaluation/monitoring.js';
import type { SqlClient } from './sql-client.js';

/**
 * The pairs of live monitoring, read from the store: each outcome joined to its subject's latest
 * prediction at or before the outcome's time, that prediction made since `since`; and the
 * predictions since then whose subject has no outcome yet (those without an id never will).
 */

export interface WindowPairs {
  pairs: Pair[];
  unlabelled: Unlabelled[];
}

/** Input profile of a prediction that has none (a model without scenarios). */
export const NO_PROFILE = 'none';

export async function monitoringPairs(client: SqlClient, since: number): Promise<WindowPairs> {
  const rows = await client.all<{
    died: number;
    probability: number;
    model_version: string;
    input_profile: string | null;
  }>(
    `SELECT o.died, p.probability, p.model_version, p.input_profile
     FROM outcomes o JOIN predictions p ON p.id = (
       SELECT q.id FROM predictions q
       WHERE q.subject_key = o.subject_key AND q.at <= o.at
       ORDER BY q.at DESC, q.id DESC LIMIT 1)
     WHERE p.at >= $1`,
    [since],
  );
  const counts = await client.all<{ model_version: string; input_profile: string | null; n: number }>(
    `SELECT p.model_version, p.input_profile, COUNT(*) AS n FROM predictions p
     WHERE p.at >= $1 AND (p.subject_key IS NULL
       OR NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.subject_key = p.subject_key))
     GROUP BY p.model_version, p.input_profile`,
    [since],
  );
  return {
    pairs: rows.map((r) => ({
      probability: Number(r.probability),
      died: Number(r.died) === 1 ? 1 : 0,
      version: r.model_version,
      profile: r.input_profile ?? NO_PROFILE,
    })),
    unlabelled: counts.map((c) => ({
      version: c.model_version,
      profile: c.input_profile ?? NO_PROFILE,
      count: Number(c.n),
    })),
  };
}

/**
 * The soak's store outage (issue 30): scoring with ids while the PostgreSQL cluster behind the
 * prediction store is stopped and started again. Every answer must be 2xx, /health/ready must
 * stay 200, and every result scored with an id must be in the store once it is back: the rows
 * queued during the outage are written after it, and the count lost is printed.
 */
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface OutagePlan {
  /** Seconds of scoring before the stop, while stopped, and after the start. */
  beforeS: number;
  downS: number;
  afterS: number;
  patientsPerRequest: number;
}

export interface OutageResult {
  requests: number;
  statuses: Record<string, number>;
  readyStatuses: Record<string, number>;
  downMs: number;
  scoredWithId: number;
  recorded: number;
  lost: number;
  droppedTotal: number;
  failedWrites: number;
  drainMs: number;
}

/** `pg_ctlcluster <version> <name> stop|start`; the cluster from PG_CLUSTER ("15 main") or the only one. */
async function clusterOf(): Promise<[string, string]> {
  const given = process.env.PG_CLUSTER?.trim().split(/\s+/);
  if (given?.length === 2) return [given[0] as string, given[1] as string];
  const { stdout } = await run('pg_lsclusters', ['-h']);
  const [version, name] = stdout.trim().split('\n')[0]?.split(/\s+/) ?? [];
  if (!version || !name) throw new Error('no PostgreSQL cluster found (pg_lsclusters); set PG_CLUSTER');
  return [version, name];
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : Number.NaN;
}

const tally = (counts: Record<string, number>, key: number): void => {
  counts[key] = (counts[key] ?? 0) + 1;
};

export async function runStoreOutage(
  base: string,
  apiKey: string,
  options: {
    databaseUrl: string;
    siteKey: string;
    plan: OutagePlan;
    body: (ids: string[]) => string;
    log: (msg: string) => void;
  },
): Promise<OutageResult> {
  const { plan } = options;
  const [version, name] = await clusterOf();
  const runId = `soak-${Date.now().toString(36)}`;
  const scoredIds: string[] = [];
  const statuses: Record<string, number> = {};
  const readyStatuses: Record<string, number> = {};
  const headers = { 'content-type': 'application/json', 'x-api-key': apiKey };
  let requests = 0;
  let sending = true;

  const scorer = (async () => {
    while (sending) {
      const ids = Array.from({ length: plan.patientsPerRequest }, (_, p) => `${runId}-${requests}-${p}`);
      requests++;
      let status = -1;
      try {
        const r = await fetch(`${base}/v1/predict`, { method: 'POST', headers, body: options.body(ids) });
        status = r.status;
        const answer = (await r.json()) as { results?: Array<{ id?: string; probability?: number }> };
        for (const result of answer.results ?? [])
          if (typeof result.probability === 'number' && result.id) scoredIds.push(result.id);
      } catch {
        /* counted as -1 */
      }
      tally(statuses, status);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  const prober = (async () => {
    while (sending) {
      try {
        const r = await fetch(`${base}/health/ready`);
        await r.arrayBuffer();
        tally(readyStatuses, r.status);
      } catch {
        tally(readyStatuses, -1);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();

  const sleep = (s: number) => new Promise((resolve) => setTimeout(resolve, s * 1000));
  let downMs: number;
  try {
    await sleep(plan.beforeS);
    const stoppedAt = performance.now();
    await run('pg_ctlcluster', [version, name, 'stop', '--', '-m', 'fast']);
    options.log(`store outage: PostgreSQL ${version}/${name} stopped`);
    await sleep(plan.downS);
    await run('pg_ctlcluster', [version, name, 'start']);
    downMs = performance.now() - stoppedAt;
    options.log(`store outage: PostgreSQL started again after ${(downMs / 1000).toFixed(1)} s`);
    await sleep(plan.afterS);
  } finally {
    sending = false;
    await Promise.all([scorer, prober]);
    // Never leave the cluster down, whatever failed above.
    await run('pg_ctlcluster', [version, name, 'start']).catch(() => undefined);
  }

  // The recorder retries with backoff up to 10 s: wait for its buffer to empty (bounded).
  const drainStart = performance.now();
  while (performance.now() - drainStart < 60_000 && (await metric(base, 'prediction_store_buffered_rows')) !== 0)
    await new Promise((resolve) => setTimeout(resolve, 200));
  const drainMs = performance.now() - drainStart;

  const keys = scoredIds.map((id) =>
    createHmac('sha256', Buffer.from(options.siteKey, 'utf8')).update(id).digest('hex'),
  );
  const client = new pg.Client({ connectionString: options.databaseUrl });
  await client.connect();
  let recorded: number;
  try {
    const found = await client.query<{ n: string }>(
      'SELECT COUNT(DISTINCT subject_key) AS n FROM predictions WHERE subject_key = ANY($1)',
      [keys],
    );
    recorded = Number(found.rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
  return {
    requests,
    statuses,
    readyStatuses,
    downMs: Math.round(downMs),
    scoredWithId: scoredIds.length,
    recorded,
    lost: scoredIds.length - recorded,
    droppedTotal: await metric(base, 'prediction_store_dropped_total'),
    failedWrites: await metric(base, 'prediction_store_write_failures_total'),
    drainMs: Math.round(drainMs),
  };
}

/**
 * CPU time per stay of each thread of the server under one HTTP load: main thread (HTTP,
 * parsing, validation, tensors), engine worker, and the rest (GC, libuv), read from
 * /proc/<pid>/task/<tid>/stat before and after the load (Linux). CPU time is much less
 * disturbed than throughput when other jobs share the machine, so it is the figure to
 * compare two versions by when the machine is not quiet.
 *   node --import tsx bench/thread-cpu.ts [batch|single] [--seconds 6] [--connections N]
 * `batch`: 256-stay requests from 2 clients; `single`: one stay per request from 64 clients
 * (`--connections` changes the number of clients).
 * Extra server environment: BENCH_SERVER_ENV='{"MAX_BATCH_SIZE":"1"}'.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadPredict, startServer } from './http.js';
import { predictBody } from './payload.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { seconds: { type: 'string', default: '6' }, connections: { type: 'string' } },
});
const mode = positionals[0] === 'single' ? 'single' : 'batch';
const seconds = Number(values.seconds);
const server = await startServer(JSON.parse(process.env.BENCH_SERVER_ENV ?? '{}') as Record<string, string>);

/** CPU milliseconds of each thread of the server so far. */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${server.pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${server.pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime and stime, in clock ticks of 10 ms.
      out.set(tid, (Number(fields[11]) + Number(fields[12])) * 10);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return out;
}

try {
  const body = mode === 'single' ? predictBody(1, 48, 7) : predictBody(256, 48, 1);
  const load = {
    body,
    staysPerRequest: mode === 'single' ? 1 : 256,
    connections: values.connections ? Number(values.connections) : mode === 'single' ? 64 : 2,
  };
  await loadPredict(server, { ...load, seconds: 2 });
  const before = threadCpu();
  const result = await loadPredict(server, { ...load, seconds });
  const after = threadCpu();
  const stays = result.staysPerSecond * result.seconds;
  const perStay = (ms: number): string => `${((ms * 1000) / stays).toFixed(0)} us`;
  const rows: string[] = [];
  let rest = 0;
  for (const [tid, ms] of after) {
    const used = ms - (before.get(tid) ?? 0);
    if (tid === String(server.pid)) rows.unshift(`main ${perStay(used)}`);
    else if (used > 0.1 * result.seconds * 1000) rows.push(`thread ${tid} ${perStay(used)}`);
    else rest += used;
  }
  rows.push(`others ${perStay(rest)}`);
  process.stdout.write(
    `${mode}: ${result.staysPerSecond.toFixed(0)} stays/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, non-2xx ${result.non2xx}; CPU per stay: ${rows.join(', ')}\n`,
  );
} finally {
  await server.stop();
}

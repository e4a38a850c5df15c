import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { buildTestApp, samplePatient } from '../helper.js';

const LINES = 100_000;
const WARM_UP_LINES = 20_000;
const HOURS_PER_STAY = 24;
/**
 * Resident memory may grow this much while 100,000 lines stream through, over what it was
 * after a first (warm-up) stream. The body is about 84 MB of NDJSON (24-hour stays): a server
 * that buffered it would grow by that much for the raw bytes alone, and by several times more
 * for the parsed patients or the results. The margin over the streaming server's own figure
 * (20-65 MiB seen, mostly V8 growing its heap to the working size) keeps the test from
 * failing on a busy CI machine while still catching any buffering.
 */
const RSS_GROWTH_LIMIT = 128 * 1024 * 1024;

interface StreamStats {
  answered: number;
  /** Lines the client had generated when the first answer arrived: below `lines` proves streaming. */
  sentAtFirstAnswer: number;
  outOfOrder: number;
  errors: number;
  peakRss: number;
}

/**
 * Streams `lines` patients to the server and reads the answer as it comes, holding neither:
 * the body is generated as the socket asks for it and each answer line is checked and dropped.
 */
function streamCohort(port: number, lines: number): Promise<StreamStats> {
  const templates = Array.from({ length: 64 }, (_, i) => ({
    ...samplePatient(HOURS_PER_STAY, 7000 + i),
    height: 170,
    weight: 80,
  }));
  const stats: StreamStats = { answered: 0, sentAtFirstAnswer: -1, outOfOrder: 0, errors: 0, peakRss: 0 };
  const sample = (): void => {
    stats.peakRss = Math.max(stats.peakRss, process.memoryUsage.rss());
  };
  let next = 0;
  const body = new Readable({
    read() {
      let chunk = '';
      for (let k = 0; k < 200 && next < lines; k++, next++) {
        chunk += `${JSON.stringify({ ...templates[next % templates.length], id: `patient-${String(next).padStart(8, '0')}` })}\n`;
      }
      // Sampled while the server reads too: one that buffered the body before answering shows here.
      sample();
      this.push(chunk === '' ? null : chunk);
    },
  });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/predict/stream',
        headers: { 'content-type': 'application/x-ndjson' },
      },
      (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
        let rest = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const parts = (rest + chunk).split('\n');
          rest = parts.pop() ?? '';
          for (const part of parts) {
            const line = JSON.parse(part) as { line: number; probability?: number };
            if (stats.answered === 0) stats.sentAtFirstAnswer = next;
            stats.answered++;
            if (line.line !== stats.answered) stats.outOfOrder++;
            if (typeof line.probability !== 'number') stats.errors++;
            if (stats.answered % 1000 === 0) sample();
          }
        });
        res.on('end', () => resolve(stats));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    body.pipe(req);
  });
}

test(
  '100,000 NDJSON lines stream through with flat memory, every line answered in order',
  { timeout: 600_000 },
  async (t) => {
    const { app } = await buildTestApp(t, { env: { MAX_BATCH_SIZE: '256' } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;

    // The first stream warms the JIT, the engine and V8's heap up to its working size.
    const warm = await streamCohort(port, WARM_UP_LINES);
    assert.equal(warm.answered, WARM_UP_LINES);
    const baseline = process.memoryUsage.rss();

    const stats = await streamCohort(port, LINES);
    assert.equal(stats.answered, LINES);
    // Socket buffers hold at most a few MB of the 84 MB body: an answer before the body ended means
    // the server scored lines as they came instead of reading the whole body first.
    assert.ok(
      stats.sentAtFirstAnswer > 0 && stats.sentAtFirstAnswer < LINES / 2,
      `first answer came after ${stats.sentAtFirstAnswer} of ${LINES} lines were sent`,
    );
    assert.equal(stats.outOfOrder, 0);
    assert.equal(stats.errors, 0);
    const growth = stats.peakRss - baseline;
    t.diagnostic(
      `RSS after warm-up ${(baseline / 2 ** 20).toFixed(0)} MiB, peak while streaming ${(stats.peakRss / 2 ** 20).toFixed(0)} MiB, growth ${(growth / 2 ** 20).toFixed(1)} MiB; first answer after ${stats.sentAtFirstAnswer} lines sent`,
    );
    assert.ok(growth < RSS_GROWTH_LIMIT, `resident memory grew by ${(growth / 2 ** 20).toFixed(0)} MiB`);
  },
);

/**
 * Main-thread cost per 48-hour stay of the steps before the engine, timed alone: JSON.parse +
 * validation (the ordinary path) and the patient scanner (src/clinical/scan.ts); for the choice
 * between them, what Fastify's own body handling would run: JSON.parse alone, Fastify's schema
 * compiler (@fastify/ajv-compiler) on the patient's JSON Schema from zod (z.toJSONSchema),
 * and the whole zod schema; then batch building (the graph's inputs) into fresh buffers and into a
 * reused one (what the engine's buffer pool saves: a fresh buffer's pages are faulted in as it is written).
 * The two reading steps also give the main thread's CPU time (bench/cpu.ts). Run pinned to one core
 * for steadier figures:
 *   taskset -c 0 node --import tsx bench/main-thread.ts [--stays 4096] [--batch 64]
 */
import { parseArgs } from 'node:util';
import { AjvCompiler } from '@fastify/ajv-compiler';
import { z } from 'zod';
import { buildBatch } from '../src/clinical/preprocess.js';
import { createPatientValidator } from '../src/clinical/validate.js';
import type { ValidPatient } from '../src/clinical/types.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { manifestSchema } from '../src/model/manifest.js';
import { threadCpuMs } from './cpu.js';
import { defaultModelPath } from './engine.js';
import { syntheticPatient } from './payload.js';

const { values } = parseArgs({
  options: {
    stays: { type: 'string', default: '4096' },
    batch: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '6' },
  },
});
const N = Number(values.stays);
const B = Number(values.batch);
const manifest = manifestSchema.parse(
  JSON.parse(readFileSync(join(defaultModelPath(), '..', 'manifest.json'), 'utf8')),
);
const validator = createPatientValidator(manifest);
const lines = Array.from({ length: N }, (_, i) => JSON.stringify({ id: `stay-${i}`, ...syntheticPatient(48, i + 1) }));
// The scanner reads bytes, as the service receives them.
const lineBytes = lines.map((line) => Buffer.from(line));
// The patient's JSON Schema from zod (draft 7, Fastify's default); what zod cannot express (unit-aware
// bounds) becomes {}, so the schema compiler checks less than the validator does. strict: false lets
// it pass the OpenAPI extension keywords (x-unit), as an app serving this schema would configure.
const patientJsonSchema = z.toJSONSchema(validator.schema, { io: 'input', unrepresentable: 'any', target: 'draft-7' });
const fastifyCompile = AjvCompiler()({}, { customOptions: { strict: false } });
const ajvValidate = fastifyCompile({ schema: patientJsonSchema, method: 'POST', url: '/', httpPart: 'body' });
const us = (ms: number): string => ((ms * 1000) / N).toFixed(1).padStart(6);

for (let round = 0; round < Number(values.rounds); round++) {
  let t = performance.now();
  let cpu = threadCpuMs();
  const parsed: ValidPatient[] = lines.map((line) => {
    const outcome = validator.validate(JSON.parse(line));
    if (!outcome.ok) throw new Error('a synthetic stay failed validation');
    return outcome.patient;
  });
  const parseValidate = performance.now() - t;
  const parseValidateCpu = threadCpuMs() - cpu;

  t = performance.now();
  const objects = lines.map((line) => JSON.parse(line) as unknown);
  const parseOnly = performance.now() - t;

  t = performance.now();
  for (const o of objects) if (ajvValidate(o) !== true) throw new Error('a synthetic stay failed the JSON Schema');
  const ajv = performance.now() - t;

  t = performance.now();
  for (const o of objects)
    if (!validator.schema.safeParse(o).success) throw new Error('a synthetic stay failed the zod schema');
  const zodFull = performance.now() - t;

  t = performance.now();
  cpu = threadCpuMs();
  const scanned: ValidPatient[] = lineBytes.map((line) => {
    const s = validator.scanText(line);
    if (s === undefined) throw new Error('the scanner declined a synthetic stay');
    return s.patient;
  });
  const scan = performance.now() - t;
  const scanCpu = threadCpuMs() - cpu;

  t = performance.now();
  for (let i = 0; i < N; i += B) buildBatch(manifest, scanned.slice(i, i + B));
  const buildFresh = performance.now() - t;

  const reused = new Float64Array(B * 48 * manifest.variables.length);
  t = performance.now();
  for (let i = 0; i < N; i += B)
    buildBatch(manifest, scanned.slice(i, i + B), (n) => (n === reused.length ? reused : new Float64Array(n)));
  const buildReused = performance.now() - t;

  process.stdout.write(
    `round ${round}: JSON.parse+validate ${us(parseValidate)} (cpu ${us(parseValidateCpu)}) | scan ${us(scan)} (cpu ${us(scanCpu)}) | JSON.parse ${us(parseOnly)} | Fastify schema ${us(ajv)} | zod whole ${us(zodFull)} | buildBatch fresh ${us(buildFresh)} | reused ${us(buildReused)}  (us per stay; ${parsed.length} stays, batch ${B})\n`,
  );
}

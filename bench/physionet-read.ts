/**
 * Main-thread cost per 48-hour stay of the CLI's PhysioNet path before the engine: a record's text
 * to a valid patient (`read`, in memory), and the same through the CLI's directory source with its
 * file reads (`source`, what `score --format physionet` runs). Records are synthetic, built from
 * bench/payload.ts's stays with each value at a random minute of its hour, as challenge files are.
 * Each figure is wall time and, in brackets, the main thread's CPU time (bench/cpu.ts). Run pinned to
 * one core for steadier figures:
 *   taskset -c 0 node --import tsx bench/physionet-read.ts [--stays 2048] [--rounds 6]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { physionetDirectorySource } from '../src/cli/sources/physionet.js';
import { physionetStay } from '../src/clinical/physionet.js';
import { createPatientValidator } from '../src/clinical/validate.js';
import { manifestSchema } from '../src/model/manifest.js';
import { threadCpuMs } from './cpu.js';
import { defaultModelPath } from './engine.js';
import { syntheticPatient } from './payload.js';

const { values } = parseArgs({
  options: { stays: { type: 'string', default: '2048' }, rounds: { type: 'string', default: '6' } },
});
const N = Number(values.stays);
const manifest = manifestSchema.parse(
  JSON.parse(readFileSync(join(defaultModelPath(), '..', 'manifest.json'), 'utf8')),
);
const validator = createPatientValidator(manifest);

/** A challenge record (`Time,Parameter,Value`) of one synthetic stay; deterministic from the seed. */
function syntheticRecord(seed: number): string {
  const stay = syntheticPatient(48, seed) as {
    age: number;
    sex: string;
    icuType: number;
    height: number;
    weight: number;
    hours: Array<Record<string, number>>;
  };
  const minute = (hour: number, k: number): string =>
    `${String(hour).padStart(2, '0')}:${String((seed * 7 + hour * 13 + k * 29) % 60).padStart(2, '0')}`;
  const lines = ['Time,Parameter,Value', `00:00,RecordID,${seed}`, `00:00,Age,${stay.age}`];
  lines.push(`00:00,Gender,${stay.sex === 'female' ? 0 : 1}`, `00:00,Height,${stay.height}`);
  lines.push(`00:00,ICUType,${stay.icuType}`, `00:00,Weight,${stay.weight}`);
  stay.hours.forEach((row, hour) => {
    Object.entries(row).forEach(([name, value], k) => lines.push(`${minute(hour, k)},${name},${value}`));
  });
  return `${lines.join('\n')}\n`;
}

const texts = Array.from({ length: N }, (_, i) => syntheticRecord(i + 1));
const dir = mkdtempSync(join(tmpdir(), 'physionet-bench-'));
texts.forEach((text, i) => writeFileSync(join(dir, `${i + 1}.txt`), text));
const us = (ms: number): string => ((ms * 1000) / N).toFixed(1).padStart(6);

try {
  for (let round = 0; round < Number(values.rounds); round++) {
    let t = performance.now();
    let cpu = threadCpuMs();
    for (let i = 0; i < N; i++) {
      const outcome = validator.validate(physionetStay(texts[i] as string, manifest, String(i + 1)));
      if (!outcome.ok) throw new Error('a synthetic record failed validation');
    }
    const read = performance.now() - t;
    const readCpu = threadCpuMs() - cpu;

    t = performance.now();
    cpu = threadCpuMs();
    const source = await physionetDirectorySource(dir, manifest, { index: 0, count: 1 }, 1 << 20);
    let n = 0;
    for await (const record of source.records()) {
      if (record.failure !== undefined || !validator.validate(record.input).ok) throw new Error('a record failed');
      n++;
    }
    const viaSource = performance.now() - t;
    const sourceCpu = threadCpuMs() - cpu;
    if (n !== N) throw new Error(`read ${n} of ${N} records`);

    process.stdout.write(
      `round ${round}: read ${us(read)} (${us(readCpu)}) | source ${us(viaSource)} (${us(sourceCpu)})  (us per stay, wall (main-thread CPU); ${N} records of 48 h)\n`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

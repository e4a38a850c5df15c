import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';

/**
 * Writes the inputs of the memory-bound measurements (bench/RESULTS.md, "Memory bounds (issue 27)")
 * into the folder given: a FHIR Bundle whose Encounter starts at 0001-01-01, a long-form CSV with a
 * time of 100000000 hours, one with a 200 MB field, one id of 10^6 rows, and an NDJSON line of 60 MiB.
 */

const dir = process.argv[2] ?? 'bench-out';
await mkdir(dir, { recursive: true });

const bundle = {
  resourceType: 'Bundle',
  type: 'collection',
  entry: [
    { resource: { resourceType: 'Patient', id: 'p1', birthDate: '1960-01-01', gender: 'female' } },
    {
      resource: {
        resourceType: 'Encounter',
        id: 'e1',
        status: 'in-progress',
        subject: { reference: 'Patient/p1' },
        period: { start: '0001-01-01T00:00:00Z' },
      },
    },
    {
      resource: {
        resourceType: 'Observation',
        id: 'o1',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
        subject: { reference: 'Patient/p1' },
        effectiveDateTime: '2026-03-15T05:00:00Z',
        valueQuantity: { value: 80, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
      },
    },
  ],
};
await writeFile(join(dir, 'year-one.json'), JSON.stringify(bundle));

await writeFile(
  join(dir, 'late-time.csv'),
  ['id,time,variable,value', 'a,00:10,HR,80', 'b,00:10,HR,80', 'b,100000000,HR,81', 'c,01:10,HR,90', ''].join('\n'),
);

async function writeLarge(path: string, parts: () => Generator<string>): Promise<void> {
  const out = createWriteStream(path);
  for (const part of parts()) if (!out.write(part)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

await writeLarge(join(dir, 'huge-field.csv'), function* () {
  yield 'id,time,variable,value\na,00:10,HR,80\nb,00:10,HR,"';
  const block = 'x'.repeat(1 << 20);
  for (let i = 0; i < 200; i++) yield block;
  yield '"\nc,01:10,HR,90\n';
});

await writeLarge(join(dir, 'million-rows.csv'), function* () {
  yield 'id,time,variable,value\n';
  for (let k = 0; k < 1_000_000; k += 1000) {
    let chunk = '';
    for (let j = k; j < k + 1000; j++) {
      const minute = j % 2880;
      chunk += `a,${Math.floor(minute / 60)}:${String(minute % 60).padStart(2, '0')},HR,${60 + (j % 80)}\n`;
    }
    yield chunk;
  }
});

await writeLarge(join(dir, 'line-60mib.ndjson'), function* () {
  yield '{"id":"big","hours":[{"HR":80}],"pad":"';
  const block = 'x'.repeat(1 << 20);
  for (let i = 0; i < 60; i++) yield block;
  yield '"}\n{"id":"after","hours":[{"HR":80}]}\n';
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildBatch } from '../../src/clinical/preprocess.js';
import type { ValidPatient } from '../../src/clinical/types.js';
import { manifestSchema } from '../../src/model/manifest.js';
import { validPatientOf } from '../helper.js';

/** Two variables, one numeric and one categorical static: small enough to write the batch by hand. */
const manifest = manifestSchema.parse({
  name: 'hand',
  version: '1.0.0',
  createdAt: '2026-01-01T00:00:00Z',
  description: 'hand-computed preprocessing case',
  onnx: {
    file: 'model.onnx',
    opset: 17,
    inputs: { values: 'values', statics: 'statics', lengths: 'lengths' },
    output: 'probability',
  },
  architecture: { type: 'lstm', layers: 1, hidden: 2, head: [2], nInputs: 10 },
  maxHours: 3,
  hourAggregation: 'last',
  variables: [
    { name: 'A', label: 'A', unit: 'u', bounds: { min: 0, max: 100 }, aggregation: 'last', mean: 10, std: 2 },
    { name: 'B', label: 'B', unit: 'u', bounds: { min: -100, max: 100 }, aggregation: 'last', mean: 0, std: 4 },
  ],
  statics: [
    { name: 'Age', kind: 'numeric', unit: 'a', bounds: { min: 15, max: 110 }, mean: 50, std: 10 },
    { name: 'Gender', kind: 'categorical', categories: [0, 1], labels: ['female', 'male'] },
  ],
  deltaCap: 1,
  calibration: { method: 'none' },
  decisionThreshold: 0.5,
  provenance: {},
  metrics: {},
});

function patient(
  hours: Array<Record<string, number | null>>,
  age: number | null,
  sex: ValidPatient['sex'],
): ValidPatient {
  return validPatientOf(manifest, hours, { age, sex, icuType: null, height: null });
}

test('buildBatch sends each stay as binned, NaN where not measured and after its last hour, and raw statics', () => {
  const batch = buildBatch(manifest, [
    patient(
      [
        { A: 12, B: null },
        { A: null, B: 2 },
        { A: null, B: null },
      ],
      60,
      'male',
    ),
    patient([{ A: null, B: -4 }], null, null),
  ]);
  assert.equal(batch.batch, 2);
  assert.equal(batch.time, 3);
  assert.equal(batch.nVariables, 2);
  assert.equal(batch.nStatics, 2);
  assert.deepEqual([...batch.lengths], [3, 1]);
  // Hour by hour: A, B.
  assert.deepEqual([...batch.values], [12, NaN, NaN, 2, NaN, NaN, /* stay 2 */ NaN, -4, NaN, NaN, NaN, NaN]);
  // Age, then Gender's code: "male" is the second label, so category 1.
  assert.deepEqual([...batch.statics], [60, 1, NaN, NaN]);
});

test('buildBatch sends only the last maxHours hours of a longer stay', () => {
  const hours = [1, 2, 3, 4, 5].map((a) => ({ A: a, B: null }));
  const batch = buildBatch(manifest, [
    validPatientOf(manifest, hours, { age: 50, sex: 'female', icuType: null, height: null }),
  ]);
  assert.deepEqual([...batch.lengths], [3]);
  assert.deepEqual([...batch.values], [3, NaN, 4, NaN, 5, NaN]);
});

test('buildBatch pads only to the longest stay of the batch', () => {
  const batch = buildBatch(manifest, [
    patient([{ A: 10, B: 0 }], 50, 'female'),
    patient(
      [
        { A: 10, B: 0 },
        { A: 11, B: 1 },
      ],
      50,
      'female',
    ),
  ]);
  assert.equal(batch.time, 2);
  assert.equal(batch.values.length, 2 * 2 * 2);
});

test('buildBatch gives a stay the same rows whatever else is in the batch', () => {
  const a = patient(
    [
      { A: 14, B: null },
      { A: null, B: 8 },
    ],
    70,
    'female',
  );
  const alone = buildBatch(manifest, [a]);
  const mixed = buildBatch(manifest, [
    patient(
      [
        { A: 1, B: 1 },
        { A: 2, B: 2 },
        { A: 3, B: 3 },
      ],
      20,
      'male',
    ),
    a,
  ]);
  const rowsOfA = mixed.values.slice(3 * 2, 3 * 2 + 2 * 2);
  assert.deepEqual([...rowsOfA], [...alone.values]);
  assert.deepEqual([...mixed.statics.slice(2)], [...alone.statics]);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildBatch } from '../../src/clinical/preprocess.js';
import type { ValidPatient } from '../../src/clinical/types.js';
import { manifestSchema } from '../../src/model/manifest.js';
import { validPatientOf } from '../helper.js';

/** Two variables, one numeric and one categorical static, deltaCap 1: small enough to compute by hand. */
const manifest = manifestSchema.parse({
  name: 'hand',
  version: '1.0.0',
  createdAt: '2026-01-01T00:00:00Z',
  description: 'hand-computed preprocessing case',
  onnx: { file: 'model.onnx', opset: 17, inputs: { x: 'x', lengths: 'lengths' }, output: 'probability' },
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

test('buildBatch produces the hand-computed tensor: forward fill, masks, capped deltas, statics, zero padding', () => {
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
  assert.equal(batch.nInputs, 10);
  assert.deepEqual([...batch.lengths], [3, 1]);
  //            values    masks   deltas   age  miss  female male
  const expected = [
    [1, 0, /**/ 1, 0, /**/ 0, 1, /**/ 1, 0, /**/ 0, 1],
    [1, 0.5, /**/ 0, 1, /**/ 1, 0, /**/ 1, 0, /**/ 0, 1],
    [1, 0.5, /**/ 0, 0, /**/ 1, 1, /**/ 1, 0, /**/ 0, 1],
    [0, -1, /**/ 0, 1, /**/ 1, 0, /**/ 0, 1, /**/ 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  ].flat();
  assert.deepEqual([...batch.x], expected);
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
  assert.equal(batch.x.length, 2 * 2 * 10);
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
  const rowsOfA = mixed.x.slice(3 * 10, 3 * 10 + 2 * 10);
  assert.deepEqual([...rowsOfA], [...alone.x]);
});

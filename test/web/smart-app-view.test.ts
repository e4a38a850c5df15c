import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  cardSections,
  chartPoints,
  featureIndex,
  measurementsByVariable,
  readAssessment,
} from '../../web/smart-app/view.js';

/** The SMART app's pure logic (web/smart-app/view.ts) on hand-written resources. */

const S = 'urn:icu-mortality:fhir';
const LOINC = 'http://loinc.org';

const riskAssessment = {
  resourceType: 'RiskAssessment',
  contained: [
    {
      resourceType: 'OperationOutcome',
      id: 'input-warnings',
      issue: [{ severity: 'warning', code: 'value', diagnostics: 'HR not used: outside the plausible range' }],
    },
  ],
  extension: [
    { url: `${S}:StructureDefinition:input-warnings`, valueReference: { reference: '#input-warnings' } },
    {
      url: `${S}:StructureDefinition:input-profile`,
      extension: [
        { url: 'scenario', valueCode: 'vitals-only' },
        { url: 'heldOutAuroc', valueDecimal: 0.71 },
      ],
    },
    {
      url: `${S}:StructureDefinition:trajectory`,
      extension: [
        {
          url: 'point',
          extension: [
            { url: 'hour', valueInteger: 1 },
            { url: 'probability', valueDecimal: 0.1 },
          ],
        },
        {
          url: 'point',
          extension: [
            { url: 'hour', valueInteger: 2 },
            { url: 'probability', valueDecimal: 0.3 },
          ],
        },
      ],
    },
    {
      url: `${S}:StructureDefinition:contributions`,
      extension: [
        {
          url: 'contribution',
          extension: [
            { url: 'variable', valueString: 'HR' },
            { url: 'effect', valueDecimal: 0.02 },
          ],
        },
        {
          url: 'contribution',
          extension: [
            { url: 'variable', valueString: 'MAP' },
            { url: 'effect', valueDecimal: -0.05 },
          ],
        },
        {
          url: 'contribution',
          extension: [
            { url: 'variable', valueString: 'age' },
            { url: 'effect', valueDecimal: 0.01 },
          ],
        },
      ],
    },
  ],
  method: { coding: [{ system: `${S}:model`, code: 'icu-mortality', version: '1.6.0' }] },
  prediction: [
    {
      probabilityDecimal: 0.3,
      qualitativeRisk: { coding: [{ code: 'moderate', display: 'Moderate likelihood' }] },
    },
  ],
  basis: [{ reference: 'Patient/p' }, { reference: 'Observation/bp1' }, { reference: 'Observation/hr2' }],
  note: [{ text: 'Scored on vital signs only; on such stays the model’s held-out AUROC is 0.71.' }],
};

describe('the SMART app’s reading of $predict’s RiskAssessment', () => {
  test('risk, band, model, profile, trajectory, contributions largest first, and what was not used', () => {
    const a = readAssessment(riskAssessment);
    assert.equal(a.probability, 0.3);
    assert.equal(a.band, 'moderate');
    assert.equal(a.model, 'icu-mortality 1.6.0');
    assert.deepEqual(a.profile, {
      scenario: 'vitals-only',
      heldOutAuroc: 0.71,
      text: 'Scored on vital signs only; on such stays the model’s held-out AUROC is 0.71.',
    });
    assert.deepEqual(a.trajectory, [
      { hour: 1, probability: 0.1 },
      { hour: 2, probability: 0.3 },
    ]);
    assert.deepEqual(
      a.contributions.map((c) => c.variable),
      ['MAP', 'HR', 'age'],
    );
    assert.deepEqual(a.notUsed, [{ severity: 'warning', text: 'HR not used: outside the plausible range' }]);
    assert.equal(a.bootstrap, false);
  });

  test('measurements behind a variable: only Observations in the basis, components too, newest first', () => {
    const index = featureIndex([
      { name: 'HR', label: 'Heart rate', unit: '/min', loinc: ['8867-4'] },
      { name: 'MAP', label: 'Mean arterial pressure (invasive)', unit: 'mm[Hg]', loinc: ['8478-0'] },
      { name: 'NIMAP', label: 'Mean arterial pressure (cuff)', unit: 'mm[Hg]', loinc: ['8478-0'] },
    ]);
    const hr = (id: string, value: number, time: string) => ({
      resourceType: 'Observation',
      id,
      code: { coding: [{ system: LOINC, code: '8867-4' }] },
      effectiveDateTime: time,
      valueQuantity: { value, unit: '/min' },
    });
    const observations = [
      hr('hr1', 80, '2026-01-01T01:00:00Z'),
      hr('hr2', 95, '2026-01-01T02:00:00Z'),
      {
        resourceType: 'Observation',
        id: 'bp1',
        code: { coding: [{ system: LOINC, code: '85354-9' }] },
        effectiveDateTime: '2026-01-01T01:30:00Z',
        component: [
          {
            code: {
              coding: [
                { system: LOINC, code: '8478-0' },
                { system: `${S}:variable`, code: 'MAP' },
              ],
            },
            valueQuantity: { value: 70, unit: 'mmHg' },
          },
        ],
      },
    ];
    const m = measurementsByVariable(observations, readAssessment(riskAssessment).basis, index);
    // hr1 is not in the basis: not used, so not shown.
    assert.deepEqual(m.get('HR'), [{ value: 95, unit: '/min', time: '2026-01-01T02:00:00Z', ref: 'Observation/hr2' }]);
    // The variable coding decides between the invasive and the cuff pressure, as on the service.
    assert.deepEqual(m.get('MAP'), [{ value: 70, unit: 'mmHg', time: '2026-01-01T01:30:00Z', ref: 'Observation/bp1' }]);
    assert.equal(m.has('NIMAP'), false);
  });

  test('the model card’s intended use and limitations, other sections left out', () => {
    const md =
      '# Model card: x\n\nintro\n\n## Intended use\n\nAdults.\n\n## Training data\n\nSet A.\n\n## Limitations\n\nNot for children.\n';
    assert.deepEqual(cardSections(md, [/^intended use/i, /^limitations?/i]), [
      { heading: 'Intended use', text: 'Adults.' },
      { heading: 'Limitations', text: 'Not for children.' },
    ]);
  });

  test('chart points: hours spread over the width, probability 1 at the top', () => {
    const box = { width: 120, height: 110, left: 10, right: 10, top: 5, bottom: 5 };
    const points = chartPoints(
      [
        { hour: 1, probability: 0 },
        { hour: 3, probability: 0.5 },
        { hour: 5, probability: 1 },
      ],
      box,
    );
    assert.deepEqual(
      points.map((p) => [p.x, p.y]),
      [
        [10, 105],
        [60, 55],
        [110, 5],
      ],
    );
  });
});

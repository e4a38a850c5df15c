import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { defaultAlertPolicy } from '../../src/clinical/alert-policy.js';
import { riskCard } from '../../src/fhir/cds.js';

const result = {
  probability: 0.28,
  model: { name: 'icu-mortality', version: '1.6.0' },
  hoursUsed: 12,
  truncated: false,
  missingThroughout: [],
};

function detail(warnings: string[]): string {
  return riskCard({
    uuid: 'c0ffee00-0000-8000-8000-000000000000',
    result,
    policy: defaultAlertPolicy({ moderate: 0.15, high: 0.4 }),
    bootstrap: false,
    warnings,
    notes: [],
  }).detail as string;
}

describe('the CDS card says what was not used', () => {
  test('each warning is a line of its own, in words a clinician can read on the card', () => {
    const text = detail(['Temp not used: valueQuantity.code: unit string longer than 64 characters']);
    assert.ok(
      text.includes('About the data:\n- Temp not used: valueQuantity.code: unit string longer than 64 characters\n'),
      text,
    );
    assert.doesNotMatch(text, /RiskAssessment for details/);
  });

  test('at most five are listed, then how many more', () => {
    const text = detail(['w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7']);
    assert.ok(text.includes('About the data:\n- w1\n- w2\n- w3\n- w4\n- w5\n- and 2 more\n'), text);
    assert.doesNotMatch(text, /w6/);
  });

  test('each is cut to 200 characters, however long the code it quotes', () => {
    const text = detail([`unknown code ${'9'.repeat(100_000)}`]);
    const line = text.split('\n').find((l) => l.startsWith('- unknown code')) ?? '';
    assert.equal(line, `- unknown code ${'9'.repeat(199 - 'unknown code '.length)}…`);
  });

  test('a card without warnings has no such section', () => {
    assert.doesNotMatch(detail([]), /About the data/);
  });
});

/**
 * Runs src/evaluation/report.ts on the scores of a JSON file for test_evaluation_parity.py:
 * reads { probabilities, outcomes, groups, decisionThreshold } and prints the report.
 */
import { readFileSync } from 'node:fs';
import { validationReport } from '../../src/evaluation/report.js';

const input = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as {
  probabilities: number[];
  outcomes: number[];
  groups: string[];
  decisionThreshold: number;
};
const report = validationReport({
  probabilities: input.probabilities,
  outcomes: input.outcomes,
  model: { name: 'parity', version: '0' },
  decisionThreshold: input.decisionThreshold,
  groupings: [{ by: 'site', labels: input.groups }],
  development: null,
  unmatched: { recordsWithoutOutcome: 0, outcomesWithoutRecord: 0 },
});
process.stdout.write(JSON.stringify(report));

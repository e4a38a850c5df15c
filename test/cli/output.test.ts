import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import fc from 'fast-check';
import { formatRows, type ScoreRow } from '../../src/cli/output.js';

/**
 * formatRows writes plain rows itself and hands the others to csv-stringify: the file must be
 * byte for byte what csv-stringify writes for every row (with its formula guard), and read back
 * to the same fields.
 */

const rowOf = (id: string, probability: number, version = '1.2.0', hoursUsed = 48, truncated = false): ScoreRow => ({
  id,
  result: {
    id,
    probability,
    model: { name: 'icu-mortality', version },
    hoursUsed,
    truncated,
    missingThroughout: [],
    ...(hoursUsed % 2 === 0
      ? { inputProfile: { scenario: 'full', label: 'the full record', heldOutAuroc: 0.863 } }
      : {}),
  },
});

const reference = (rows: readonly ScoreRow[]): string =>
  stringify(
    rows.map(({ id, result }) => [
      id,
      result.probability,
      result.model.name,
      result.model.version,
      result.hoursUsed,
      result.truncated,
      result.inputProfile?.scenario ?? '',
      result.inputProfile?.heldOutAuroc ?? '',
    ]),
    // The library's own OWASP guard (cells led by = + - @ tab CR get a quote); LF-led cells: csv-injection.test.ts.
    { cast: { boolean: (b) => String(b) }, escape_formulas: true },
  );

test('CSV rows equal csv-stringify output for ids that need quoting and ids that do not', () => {
  const rows = [
    rowOf('132539', 0.0123456789),
    rowOf('a,b', 0.5),
    rowOf('say "hi"', 1e-7, '1.2.0', 3, true),
    rowOf('line\nbreak', 0.999),
    rowOf('', 0.25),
    rowOf('carriage\rreturn', 0.75),
    rowOf('plain-id_2', 0.3),
  ];
  const text = formatRows('csv', rows);
  assert.equal(text, reference(rows));
  const back = parse(text) as string[][];
  assert.deepEqual(
    back.map((r) => r[0]),
    rows.map((r) => r.id),
  );
  assert.equal(back[2]?.[5], 'true');
});

test('CSV rows equal csv-stringify output on random ids, probabilities and versions', () => {
  const idChars = fc.constantFrom('a', 'Z', '0', '9', '-', '_', ',', '"', '\n', '\r', ' ', 'é', '=', '+');
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          id: fc.string({ unit: idChars, maxLength: 12 }).filter((id) => !id.startsWith('\n')),
          probability: fc.double({ min: 0, max: 1, noNaN: true }),
          version: fc.constantFrom('1.2.0', '1.0.0-rc,1', '2.0.0"x"'),
          hoursUsed: fc.integer({ min: 1, max: 48 }),
          truncated: fc.boolean(),
        }),
        { maxLength: 20 },
      ),
      (records) => {
        const rows = records.map((r) => rowOf(r.id, r.probability, r.version, r.hoursUsed, r.truncated));
        assert.equal(formatRows('csv', rows), rows.length === 0 ? '' : reference(rows));
      },
    ),
    { seed: 20261201, numRuns: 300 },
  );
});

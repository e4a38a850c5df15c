import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { reportHtml } from '../../src/cli/report-html.js';
import { validationReport } from '../../src/evaluation/report.js';
import { seededRandom } from '../../src/evaluation/random.js';

/**
 * report.html as a site opens it: Debian's Chromium, from a file, with every network request
 * refused; each chart must be drawn (its SVG has marks). Without chromium the test is skipped.
 */

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

function syntheticReport() {
  const random = seededRandom(3);
  const probabilities: number[] = [];
  const outcomes: number[] = [];
  const sex: string[] = [];
  for (let i = 0; i < 800; i++) {
    const p = random.next() ** 2;
    probabilities.push(p);
    outcomes.push(random.next() < p ? 1 : 0);
    sex.push(i % 2 === 0 ? 'female' : 'male');
  }
  return validationReport({
    probabilities,
    outcomes,
    model: { name: 'icu-mortality', version: '0.0.0-test' },
    decisionThreshold: 0.3,
    groupings: [{ by: 'sex', labels: sex }],
    development: { auroc: 0.86, aurocCi95: [0.84, 0.89] },
    unmatched: { recordsWithoutOutcome: 0, outcomesWithoutRecord: 0 },
    resamples: 200,
  });
}

test(
  'report.html opens offline in Chromium with every chart drawn',
  { skip: CHROMIUM ? false : 'no chromium (apt-get install chromium)', timeout: 120_000 },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'icu-report-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'report.html');
    await writeFile(path, await reportHtml(syntheticReport()));

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    t.after(() => browser.close());
    const page = await browser.newPage();
    const requested: string[] = [];
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:')) return route.continue();
      requested.push(url);
      return route.abort();
    });
    await page.goto(pathToFileURL(path).href);
    const charts = await page.locator('figure[data-chart]').evaluateAll((figures) =>
      figures.map((f) => ({
        name: f.getAttribute('data-chart'),
        // Vega's SVG renderer puts the data's marks in g.role-mark groups (axes and legends have other roles).
        items: [...f.querySelectorAll('g.role-mark path, g.role-mark line, g.role-mark rect')].filter(
          (e) => e.tagName !== 'path' || (e.getAttribute('d') ?? '').length > 0,
        ).length,
        width: f.querySelector('svg')?.getBoundingClientRect().width ?? 0,
      })),
    );
    assert.deepEqual(
      charts.map((c) => c.name),
      ['roc', 'calibration', 'decision', 'distribution', 'subgroups', 'development'],
    );
    for (const c of charts) {
      assert.ok(c.items >= 2, `${c.name}: ${c.items} data marks`);
      assert.ok(c.width > 100, `${c.name}: ${c.width} px wide`);
    }
    assert.ok((await page.locator('table tbody tr').count()) >= 19, 'the threshold table');
    assert.deepEqual(requested, [], 'nothing fetched');
  },
);

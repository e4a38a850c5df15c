import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildApp } from '../../src/app.js';
import { loadTinyManifest, makeModelRoot, ROOT, testConfig } from '../helper.js';
import { LOINC, VARIABLE_SYSTEM } from '../fixtures/fhir/physionet-to-fhir.js';
import { startTestEhr, type TestEhr } from './test-ehr.js';

/**
 * The SMART app (/app/) as a clinician opens it from the EHR: Debian's Chromium driven by
 * playwright-core, against a loopback test EHR (test/browser/test-ehr.ts) holding fixture stays.
 * The EHR launch starts from the link of a CDS card; the open-server launch from
 * ?fhirServiceUrl=&patientId=. Figures on the page are checked against $predict for the same
 * Bundle and against the fixture records. Without chromium the test is skipped.
 */

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const CLIENT_ID = 'icu-mortality-test';
const CDS_AUDIENCE = 'http://icu-mortality.test/cds-services/icu-mortality';
const RECORDS = join(ROOT, 'test', 'fixtures', 'fhir', 'records');
const MODEL_CARD = `# Model card: icu-mortality 0.0.0-tiny

## Intended use

Adults in intensive care; a test model, never for patients.

## Training data

Not shown by the page.

## Limitations

Untrained: its probabilities carry no meaning.
`;

/** Hours a record spans: the hour of its last measurement, counted from 1 (hourOf: 48:00 is hour 48). */
function hoursOfRecord(text: string): number {
  const last = Math.max(
    ...text
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => {
        const [h, m] = (l.split(',')[0] as string).split(':').map(Number) as [number, number];
        return h * 60 + m;
      }),
  );
  return Math.min(48, Math.floor(last / 60) + 1);
}

async function serve(
  t: TestContext,
  env: Record<string, string>,
  logs?: string[],
): Promise<{ app: FastifyInstance; origin: string }> {
  // A copy of the tiny model with a model card: the page shows its intended use and limits.
  const root = await makeModelRoot(t, { '0.0.0-tiny': { copy: true } });
  await writeFile(join(root, 'icu-mortality', '0.0.0-tiny', 'model-card.md'), MODEL_CARD);
  const config = testConfig(root, { HOST: '127.0.0.1', PORT: '0', ...env });
  const logStream = logs
    ? new Writable({
        write(chunk: Buffer, _enc, done) {
          logs.push(chunk.toString());
          done();
        },
      })
    : undefined;
  const app = await buildApp(config, logStream ? { logStream } : {});
  t.after(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, origin: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
}

interface Shown {
  probability: number;
  auroc: string | undefined;
  points: number;
  tableRows: number;
  rows: Array<{ variable: string; effect: number; values: Array<{ value: number; unit: string; time: string }> }>;
  model: string;
  disclaimer: string;
  notUsed: string[];
  card: string;
}

async function shown(page: Page): Promise<Shown> {
  await page.locator('#risk-value[data-probability]').waitFor({ timeout: 30_000 });
  await page.locator('#model-card:not([hidden])').waitFor({ timeout: 30_000 });
  return {
    probability: Number(await page.locator('#risk-value').getAttribute('data-probability')),
    auroc: (await page.locator('#profile').getAttribute('data-auroc')) ?? undefined,
    points: await page.locator('#chart svg circle.point').count(),
    tableRows: await page.locator('#trend-table tbody tr').count(),
    rows: await page.locator('#contributions-table tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({
        variable: (tr as HTMLElement).dataset.variable ?? '',
        effect: Number((tr as HTMLElement).dataset.effect),
        values: [...tr.querySelectorAll('li[data-value]')].map((li) => ({
          value: Number((li as HTMLElement).dataset.value),
          unit: (li as HTMLElement).dataset.unit ?? '',
          time: li.querySelector('time')?.getAttribute('datetime') ?? '',
        })),
      })),
    ),
    model: await page.locator('#model').innerText(),
    disclaimer: await page.locator('.dso').innerText(),
    notUsed: await page.locator('#not-used-list li').allInnerTexts(),
    card: await page.locator('#model-card').innerText(),
  };
}

async function predict(app: FastifyInstance, ehr: TestEhr, patientId: string, token?: string) {
  const res = await app.inject({
    method: 'POST',
    url: '/fhir/RiskAssessment/$predict',
    headers: { 'content-type': 'application/fhir+json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    payload: JSON.stringify(ehr.bundle(patientId)),
  });
  assert.equal(res.statusCode, 200, res.body);
  const ra = res.json() as {
    prediction: Array<{ probabilityDecimal: number }>;
    extension: Array<{
      url: string;
      extension?: Array<{
        extension?: Array<{ url: string; valueString?: string; valueDecimal?: number; valueInteger?: number }>;
      }>;
    }>;
  };
  const list = (suffix: string) => ra.extension.find((e) => e.url.endsWith(suffix))?.extension ?? [];
  return {
    probability: ra.prediction[0]?.probabilityDecimal as number,
    trajectory: list(':trajectory').length,
    contributions: list(':contributions')
      .map((c) => ({
        variable: c.extension?.find((x) => x.url === 'variable')?.valueString as string,
        effect: c.extension?.find((x) => x.url === 'effect')?.valueDecimal as number,
      }))
      .sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect)),
  };
}

async function open(
  browser: Browser,
  t: TestContext,
  url: string,
): Promise<{ page: Page; offHost: string[]; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const offHost: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith('http://127.0.0.1:')) offHost.push(r.url());
  });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(url);
  return { page, offHost, errors };
}

test(
  'the SMART app: EHR launch from a CDS card, open-server launch, and a refused token',
  { skip: CHROMIUM ? false : 'no chromium (apt-get install chromium)', timeout: 180_000 },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'icu-smart-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const records = {
      'stay-c-7h': await readFile(join(RECORDS, 'stay-c.txt'), 'utf8'),
      'stay-b-20h': await readFile(join(RECORDS, 'stay-b.txt'), 'utf8'),
    };
    const manifest = await loadTinyManifest();
    const loinc = new Map(manifest.variables.map((v) => [v.name, v.loinc]));
    const specs = new Map(manifest.variables.map((v) => [v.name, v]));
    const ehr = await startTestEhr({
      manifest,
      records,
      jwksFile: join(dir, 'jwks.json'),
      clientId: CLIENT_ID,
    });
    t.after(() => ehr.close());
    const logs: string[] = [];
    const { app, origin } = await serve(
      t,
      {
        AUTH_DISABLED: 'false',
        JWT_JWKS_FILE: ehr.jwksFile,
        SMART_ISSUERS: ehr.issuer,
        SMART_AUDIENCE: ehr.fhirBase,
        CDS_HOOKS_ISSUERS: ehr.issuer,
        CDS_HOOKS_AUDIENCE: CDS_AUDIENCE,
        SMART_CLIENT_ID: CLIENT_ID,
        SMART_EHR_ORIGINS: ehr.origin,
      },
      logs,
    );
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    t.after(() => browser.close());

    // The CDS card carries the app's SMART link; the EHR launches it with iss and launch.
    const stay = ehr.stays.get('stay-c-7h');
    assert.ok(stay);
    const searchset = (category: string) => ({
      resourceType: 'Bundle',
      type: 'searchset',
      entry: stay.observations
        .filter((o) => JSON.stringify(o.category).includes(`"${category}"`))
        .map((resource) => ({ fullUrl: `${ehr.fhirBase}/Observation/${String(resource.id)}`, resource })),
    });
    const cds = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      headers: { host: new URL(origin).host, authorization: `Bearer ${await ehr.cdsToken(CDS_AUDIENCE)}` },
      payload: {
        hook: 'patient-view',
        hookInstance: 'smart-app-browser-test',
        context: { userId: 'Practitioner/1', patientId: 'stay-c-7h' },
        prefetch: { patient: stay.patient, vitals: searchset('vital-signs'), labs: searchset('laboratory') },
      },
    });
    assert.equal(cds.statusCode, 200, cds.body + logs.filter((l) => l.includes(`"level":50`)).join(''));
    const card = (cds.json() as { cards: Array<{ detail: string; links?: Array<{ type: string; url: string }> }> })
      .cards[0];
    const smart = card?.links?.find((l) => l.type === 'smart');
    assert.equal(smart?.url, `${origin}/app/launch`);
    assert.match(card?.detail ?? '', /app \(link below\)/);

    await t.test(
      'EHR launch: the page shows $predict’s risk, one point per hour, the top inputs and their values',
      async (t) => {
        const launchUrl = `${smart?.url}?iss=${encodeURIComponent(ehr.fhirBase)}&launch=${ehr.launch('stay-c-7h')}`;
        const { page, offHost, errors } = await open(browser, t, launchUrl);
        const s = await shown(page);
        assert.equal(
          ehr.lastScope,
          'launch patient/Patient.read patient/Encounter.read patient/Observation.read',
          'the scopes the page needs and no more',
        );
        const token = ehr.issued.at(-1);
        const expected = await predict(app, ehr, 'stay-c-7h', token);
        assert.equal(s.probability, expected.probability);
        const hours = hoursOfRecord(records['stay-c-7h']);
        assert.equal(hours, 7);
        assert.equal(s.points, hours, 'one chart point per hour used');
        assert.equal(expected.trajectory, hours);
        assert.equal(s.tableRows, hours, 'the chart as a table too');
        assert.deepEqual(
          s.rows.map((r) => r.variable),
          expected.contributions.map((c) => c.variable),
          'contributions largest first',
        );
        // The top measured input's values: the fixture's Observations of that variable, newest first.
        const top = s.rows.find((r) => loinc.has(r.variable));
        assert.ok(top && top.values.length > 0, 'the top input lists the measurements behind it');
        const variable = top.variable;
        const fromFixture = stay.observations
          .filter((o) => {
            const codings = (o.code as { coding: Array<{ system: string; code: string }> }).coding;
            const named = codings.find((c) => c.system === VARIABLE_SYSTEM)?.code;
            return named === undefined
              ? codings.some((c) => c.system === LOINC && loinc.get(variable)?.includes(c.code))
              : named === variable;
          })
          .map((o) => ({
            value: (o.valueQuantity as { value: number }).value,
            unit: (o.valueQuantity as { unit: string }).unit,
            time: o.effectiveDateTime as string,
          }))
          // A value outside the manifest's bounds (the fixture's HR 999) is not used, so not shown.
          .filter((m) => {
            const spec = specs.get(variable);
            return !spec || m.unit !== spec.unit || (m.value >= spec.bounds.min && m.value <= spec.bounds.max);
          })
          .sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
        assert.deepEqual(top.values, fromFixture.slice(0, top.values.length));
        assert.match(s.model, /icu-mortality 0\.0\.0-tiny/);
        assert.match(s.disclaimer, /Decision support only/);
        assert.match(s.card, /Intended use\s+Adults in intensive care; a test model, never for patients\./);
        assert.match(s.card, /Limitations\s+Untrained: its probabilities carry no meaning\./);
        assert.doesNotMatch(s.card, /Not shown by the page/);
        assert.ok(s.notUsed.length > 0);
        assert.deepEqual(offHost, [], 'no request to any host but the EHR and this service');
        assert.deepEqual(errors, [], 'no CSP violation or script error');
        const shot = join(tmpdir(), `icu-smart-app-${process.pid}.png`);
        await page.screenshot({ path: shot, fullPage: true });
        t.diagnostic(`screenshot: ${shot}`);
        // Keyboard: the first Tab reaches the skip link.
        await page.keyboard.press('Tab');
        assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip');
      },
    );

    await t.test('a token signed by a key the service does not trust is refused: no estimate', async (t) => {
      ehr.signWithUnknownKey(true);
      t.after(() => ehr.signWithUnknownKey(false));
      const { page } = await open(
        browser,
        t,
        `${origin}/app/launch?iss=${encodeURIComponent(ehr.fhirBase)}&launch=${ehr.launch('stay-c-7h')}`,
      );
      const status = page.locator('#status.error');
      await status.waitFor({ timeout: 30_000 });
      assert.match(await status.innerText(), /refused \(401\)/);
      assert.equal(await page.locator('#risk').isHidden(), true);
    });

    await t.test('the service log holds no token and no patient id', () => {
      const all = logs.join('');
      assert.ok(all.length > 0);
      for (const token of ehr.issued) assert.equal(all.includes(token), false);
      assert.equal(all.includes('stay-c-7h'), false);
    });

    await t.test('open-server launch (?fhirServiceUrl=&patientId=) against a demo service', async (t) => {
      const demo = await serve(t, { SMART_EHR_ORIGINS: ehr.origin });
      const { page, errors } = await open(
        browser,
        t,
        `${demo.origin}/app/launch?fhirServiceUrl=${encodeURIComponent(ehr.fhirBase)}&patientId=stay-b-20h`,
      );
      const s = await shown(page);
      const expected = await predict(demo.app, ehr, 'stay-b-20h');
      assert.equal(s.probability, expected.probability);
      assert.equal(s.points, hoursOfRecord(records['stay-b-20h']));
      assert.equal(s.points, 20);
      assert.deepEqual(errors, []);
      // A tablet in portrait: nothing wider than the screen.
      await page.setViewportSize({ width: 768, height: 1024 });
      assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= 768), true);
    });
  },
);

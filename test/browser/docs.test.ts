import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { buildApp } from '../../src/app.js';
import { makeModelRoot, testConfig } from '../helper.js';

/**
 * /docs as an integrator opens it: Debian's Chromium, driven by playwright-core, at a host name
 * that is not loopback, over plain HTTP (a container or a Kubernetes Service). It authorises
 * with an API key, runs "Try it out" on POST /v1/predict with the documented example and reads
 * the rendered answer. .ci/run installs chromium; without it the test is skipped.
 */

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const HOST = 'icu-mortality.hospital.test';
const KEY = 'docs-browser-test-key';

test(
  'Swagger UI at a non-loopback host over HTTP: authorise, try POST /v1/predict, see the 200',
  { skip: CHROMIUM ? false : 'no chromium (apt-get install chromium)', timeout: 120_000 },
  async (t) => {
    const hash = createHash('sha256').update(KEY).digest('hex');
    const config = testConfig(await makeModelRoot(t), {
      AUTH_DISABLED: 'false',
      API_KEY_HASHES: `docs:${hash}:predict`,
      HOST: '127.0.0.1',
      PORT: '0',
    });
    const app = await buildApp(config);
    t.after(() => app.close());
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;

    // The host name resolves to the loopback address inside this browser only: to the page it is a remote host.
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [`--host-resolver-rules=MAP ${HOST} 127.0.0.1`, '--no-sandbox'],
    });
    t.after(() => browser.close());
    const page = await browser.newPage();
    const failed: string[] = [];
    page.on('requestfailed', (r) => failed.push(r.url()));
    await page.goto(`http://${HOST}:${port}/docs`);
    await page.locator('.swagger-ui .info .title').waitFor({ timeout: 30_000 });

    await page.getByRole('button', { name: 'Authorize' }).first().click();
    const dialog = page.locator('.modal-ux');
    await dialog.locator('input[type=text], input[type=password]').first().fill(KEY);
    await dialog.locator('button.authorize').first().click();
    await dialog.locator('button.btn-done').first().click();

    const operation = page.locator('#operations-predict-predict');
    await operation.locator('.opblock-summary').click();
    await operation.getByRole('button', { name: 'Try it out' }).click();
    await operation.getByRole('button', { name: 'Execute' }).click();
    const status = operation.locator('.live-responses-table tr.response .response-col_status').first();
    await status.waitFor({ timeout: 30_000 });
    assert.equal(
      (await status.innerText()).trim(),
      '200',
      await operation.locator('.live-responses-table').innerText(),
    );
    const body = await operation.locator('.live-responses-table .response-col_description pre').first().innerText();
    assert.match(body, /"probability": 0\.\d+/);
    assert.deepEqual(failed, [], 'every asset and the API call loaded over plain HTTP');
  },
);

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildTestApp } from '../helper.js';

/** The SMART app's pages (src/api/smart-app.ts): public, with their own CSP; the browser test drives them. */

describe('the SMART app under /app/', () => {
  test('the launch page is public, names the client id (escaped) and has a strict CSP for the configured EHR', async (t) => {
    const { app } = await buildTestApp(t, {
      env: {
        AUTH_DISABLED: 'false',
        SMART_CLIENT_ID: 'icu"<app>',
        SMART_EHR_ORIGINS: 'https://ehr.hospital.example/fhir,https://auth.hospital.example',
      },
    });
    const res = await app.inject({ url: '/app/launch?iss=https%3A%2F%2Fehr.hospital.example%2Ffhir&launch=abc' });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /^text\/html/);
    assert.match(res.body, /<meta name="smart-client-id" content="icu&#34;&#60;app&#62;">/);
    const csp = res.headers['content-security-policy'] as string;
    assert.equal(
      csp,
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' https://ehr.hospital.example https://auth.hospital.example; base-uri 'none'; form-action 'none'; frame-ancestors 'self' https://ehr.hospital.example https://auth.hospital.example",
    );
    // frame-ancestors decides who may frame the app; helmet's X-Frame-Options would forbid the EHR.
    assert.equal(res.headers['x-frame-options'], undefined);
  });

  test('the page, its style and its scripts are served from this service; the API beside them still needs a credential', async (t) => {
    const { app } = await buildTestApp(t, { env: { AUTH_DISABLED: 'false' } });
    for (const [url, type] of [
      ['/app/', /^text\/html/],
      ['/app/app.css', /^text\/css/],
      ['/app/launch.js', /^text\/javascript/],
      ['/app/app.js', /^text\/javascript/],
    ] as const) {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, 200, url);
      assert.match(res.headers['content-type'] as string, type, url);
      assert.match(res.headers['content-security-policy'] as string, /connect-src 'self'; /, url);
    }
    assert.equal((await app.inject({ url: '/v1/models' })).statusCode, 401);
  });
});

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.js';
import { JtiCache, looksLikeJwt } from '../../src/plugins/app/credentials.js';

const hash = createHash('sha256').update('k').digest('hex');

describe('auth configuration', () => {
  test('API_KEY_HASHES reads name:sha256:scopes entries, scopes containing a colon included', () => {
    const config = loadConfig({ API_KEY_HASHES: `ehr:${hash}:predict models:read, ops:${hash.toUpperCase()}:admin` });
    assert.deepEqual(config.auth.apiKeys, [
      { name: 'ehr', sha256: hash, scopes: ['predict', 'models:read'] },
      { name: 'ops', sha256: hash, scopes: ['admin'] },
    ]);
  });

  test('a key given in clear instead of its hash, or an unknown scope, stops start-up naming the variable', () => {
    assert.throws(
      () => loadConfig({ API_KEY_HASHES: 'ehr:my-secret-key:predict' }),
      (e: unknown) => e instanceof ConfigError && /API_KEY_HASHES/.test(e.message) && /sha256/.test(e.message),
    );
    assert.throws(
      () => loadConfig({ API_KEY_HASHES: `ehr:${hash}:everything` }),
      (e: unknown) => e instanceof ConfigError && /API_KEY_HASHES/.test(e.message),
    );
  });

  test('HMAC and none can never be enabled as JWT algorithms', () => {
    for (const alg of ['HS256', 'none', 'RS256,HS512']) {
      assert.throws(
        () => loadConfig({ JWT_ALGORITHMS: alg }),
        (e: unknown) => e instanceof ConfigError && /JWT_ALGORITHMS/.test(e.message),
        alg,
      );
    }
    assert.deepEqual(loadConfig({ JWT_ALGORITHMS: 'ES384,RS384' }).auth.jwt, undefined);
  });

  test('a JWKS without issuers or audience is refused: any issuer would be trusted', () => {
    assert.throws(
      () => loadConfig({ JWT_JWKS_FILE: '/x.json', JWT_AUDIENCE: 'https://a' }),
      (e: unknown) => e instanceof ConfigError && /JWT_ISSUERS/.test(e.message),
    );
    assert.throws(
      () => loadConfig({ JWT_JWKS_FILE: '/x.json', JWT_ISSUERS: 'https://i' }),
      (e: unknown) => e instanceof ConfigError && /JWT_AUDIENCE/.test(e.message),
    );
    // CDS issuers are trusted on the CDS routes only, with their own audience.
    assert.throws(
      () => loadConfig({ JWT_JWKS_FILE: '/x.json', CDS_HOOKS_ISSUERS: 'https://ehr', JWT_AUDIENCE: 'https://a' }),
      (e: unknown) => e instanceof ConfigError && /CDS_HOOKS_AUDIENCE/.test(e.message),
    );
    const ok = loadConfig({
      JWT_JWKS_FILE: '/x.json',
      CDS_HOOKS_ISSUERS: 'https://ehr',
      CDS_HOOKS_AUDIENCE: 'https://a/cds-services',
    });
    assert.deepEqual(ok.auth.jwt?.api.issuers, []);
    assert.deepEqual(ok.auth.jwt?.cds, {
      issuers: ['https://ehr'],
      audience: ['https://a/cds-services'],
      maxTokenAgeS: 300,
    });
    assert.equal(ok.auth.jwt?.api.maxTokenAgeS, 3600);
  });

  test('nothing configured means fail closed, not open', () => {
    const config = loadConfig({});
    assert.equal(config.auth.disabled, false);
    assert.deepEqual(config.auth.apiKeys, []);
    assert.equal(config.auth.jwt, undefined);
  });

  test('risk thresholds must be ordered', () => {
    assert.throws(() => loadConfig({ RISK_MODERATE_THRESHOLD: '0.5', RISK_HIGH_THRESHOLD: '0.3' }), ConfigError);
  });
});

describe('jti replay cache', () => {
  test('a jti is accepted once while its token lives, and again after it expired', () => {
    const cache = new JtiCache(10);
    assert.equal(cache.accept('a', 2000, 1000), true);
    assert.equal(cache.accept('a', 2000, 1500), false);
    assert.equal(cache.accept('a', 4000, 2500), true);
  });

  test('the cache stays bounded: expired entries go first, then the oldest', () => {
    const cache = new JtiCache(3);
    cache.accept('a', 1100, 1000);
    cache.accept('b', 5000, 1000);
    cache.accept('c', 5000, 1000);
    assert.equal(cache.accept('d', 5000, 2000), true);
    assert.equal(cache.size, 3);
    assert.equal(cache.accept('b', 5000, 2000), false, 'b (live) was kept, a (expired) dropped');
    assert.equal(cache.accept('e', 5000, 2000), true);
    assert.equal(cache.size, 3);
  });

  test('only compact JWS shapes are treated as tokens', () => {
    assert.equal(looksLikeJwt('eyJhbGciOiJFUzM4NCJ9.eyJzdWIiOiJ4In0.c2ln'), true);
    assert.equal(looksLikeJwt('plain-api-key_0123'), false);
  });
});

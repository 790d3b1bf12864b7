import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseConfig, usesLocalStack } from '../../core/config.js';

test('defaults point at the local stack', () => {
  const c = parseConfig({});
  assert.equal(c.temporal.address, '127.0.0.1:7233');
  assert.equal(c.gcp.bigqueryEndpoint, 'http://127.0.0.1:9050');
  assert.equal(c.gcp.gcsEndpoint, 'http://127.0.0.1:4443');
  assert.equal(c.gcp.pubsubEmulatorHost, '127.0.0.1:8085');
  assert.equal(c.temporal.tls, undefined);
  assert.equal(usesLocalStack(c), true);
});

test('production settings: Temporal Cloud with an API key and real GCP endpoints', () => {
  const c = parseConfig({
    SEGFLOW_ENV: 'production',
    TEMPORAL_ADDRESS: 'segflow.a1b2c.tmprl.cloud:7233',
    TEMPORAL_NAMESPACE: 'segflow.a1b2c',
    TEMPORAL_API_KEY: 'secret-api-key-value',
    GCP_PROJECT: 'acme-analytics',
    SEGFLOW_API_TOKENS: 'a-long-enough-token',
    SEGFLOW_PRIVACY_SALT: 'a-long-enough-privacy-salt',
  });
  assert.equal(c.gcp.bigqueryEndpoint, undefined);
  assert.equal(c.gcp.pubsubEmulatorHost, undefined);
  assert.deepEqual(c.temporal.tls, { certPath: undefined, keyPath: undefined, serverName: undefined });
  assert.equal(usesLocalStack(c), false);
});

test('every bad variable is named in one error, secrets are not echoed', () => {
  let caught: unknown;
  try {
    parseConfig({
      TEMPORAL_ADDRESS: 'no-port',
      LOG_LEVEL: 'loud',
      SEGFLOW_LAKE_BUCKET: 'Bad_Bucket!',
      TEMPORAL_TLS: 'maybe',
      SEGFLOW_API_PORT: 'eighty',
    });
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError);
  for (const name of ['TEMPORAL_ADDRESS', 'LOG_LEVEL', 'SEGFLOW_LAKE_BUCKET', 'TEMPORAL_TLS', 'SEGFLOW_API_PORT']) {
    assert.match(caught.message, new RegExp(name), `message names ${name}`);
  }
  assert.equal(caught.problems.length, 5);

  assert.throws(
    () => parseConfig({ SEGFLOW_ENV: 'production', TEMPORAL_API_KEY: 'x' }),
    (err: unknown) => err instanceof ConfigError && /SEGFLOW_API_TOKENS/.test(err.message) && !err.message.includes('"x"'),
  );
});

test('mTLS needs both the certificate and the key', () => {
  assert.throws(() => parseConfig({ TEMPORAL_TLS_CERT_PATH: '/etc/cert.pem' }), /TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH/);
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, redactUrlQuery, scrubSecrets } from '../../core/logger.js';

function capture() {
  const lines: string[] = [];
  const logger = createLogger({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
  return { logger, text: () => lines.join('') };
}

describe('logger redaction', () => {
  it('removes secret fields at any of the first three levels', () => {
    const { logger, text } = capture();
    logger.info(
      { authorization: 'S3CRET-1', headers: { authorization: 'S3CRET-2' }, a: { b: { token: 'S3CRET-3' } }, apiKey: 'S3CRET-4' },
      'x',
    );
    assert.ok(!text().includes('S3CRET'), text());
    assert.match(text(), /\[redacted\]/);
  });

  it('keeps a logged request URL without its query values', () => {
    const { logger, text } = capture();
    logger
      .child({ component: 'api' })
      .info({ req: { method: 'GET', url: '/v1/customers/c-1/profile?access_token=S3CRET-5&x' } }, 'incoming request');
    assert.match(text(), /"url":"\/v1\/customers\/c-1\/profile\?access_token=\[redacted\]&x=\[redacted\]"/);
    assert.equal(redactUrlQuery('/healthz'), '/healthz');
  });

  it('scrubs known secrets, plain or URL-encoded, from outside text', () => {
    const secret = 'hooks/T0/B0/S3CRET value';
    const text = `refused ${secret} and ${encodeURIComponent(secret)}`;
    assert.equal(scrubSecrets(text, [secret, undefined, 'short']), 'refused [redacted] and [redacted]');
    assert.equal(scrubSecrets('a short one', ['short']), 'a short one', 'values under 8 characters are left alone');
  });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { customerIdHash, forgetRequestId, pagesOf, privacyCollections } from '../../core/privacy.js';

test('the customer id hash is keyed: same id and salt match, another salt does not, and the id is not in it', () => {
  const a = customerIdHash('salt-one-0123456789', 'cust-000042');
  assert.equal(a, customerIdHash('salt-one-0123456789', 'cust-000042'));
  assert.notEqual(a, customerIdHash('salt-two-0123456789', 'cust-000042'));
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.ok(!a.includes('cust'));
});

test('a request id depends on the set of ids only', () => {
  const salt = 'salt-one-0123456789';
  assert.equal(forgetRequestId(salt, ['b', 'a', 'a']), forgetRequestId(salt, ['a', 'b']));
  assert.notEqual(forgetRequestId(salt, ['a']), forgetRequestId(salt, ['a', 'b']));
  assert.match(forgetRequestId(salt, ['a']), /^fr-[0-9a-f]{20}$/);
});

test('pages split ids in order, the last one shorter', () => {
  const ids = Array.from({ length: 1203 }, (_, i) => `c${i}`);
  const pages = pagesOf(ids);
  assert.deepEqual(
    pages.map((p) => p.length),
    [500, 500, 203],
  );
  assert.deepEqual(pages.flat(), ids);
});

test('the forget collections sit beside the profiles collection', () => {
  assert.deepEqual(privacyCollections('p'), { suppression: 'p__suppressed', requests: 'p__forget_requests', audit: 'p__forget_audit' });
});

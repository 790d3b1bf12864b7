/**
 * Text a JSON event may carry but no UTF-8 store can hold: a lone surrogate (`"\ud800"`).
 * The lake keeps it verbatim as an escape; the online profile must still be writable.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProfileUpdateEvent } from '../../core/events.js';
import { applyTriggerEvents, DEFAULT_RFM_SCORE_BOUNDS, emptyFeatureState, wellFormed } from '../../core/realtime-features.js';

describe('lone surrogates on the real-time path', () => {
  it('wellFormed replaces lone surrogates only', () => {
    assert.equal(wellFormed('\ud800 a \udfff'), '\ufffd a \ufffd');
    assert.equal(wellFormed('💥 𝕳 ok'), '💥 𝕳 ok', 'surrogate pairs are kept');
    assert.equal(wellFormed("'; DROP TABLE x; --\u0000"), "'; DROP TABLE x; --\u0000");
    assert.equal(wellFormed(42), 42);
  });

  it('a profile update with a lone surrogate yields demographics Firestore accepts', () => {
    const event: ProfileUpdateEvent = {
      event_id: '0b6f3a52-8c1e-4d57-9a0e-2f4c6d8e1a3b',
      customer_id: 'c-1',
      type: 'profile_update',
      ts: '2026-11-26T09:00:00Z',
      properties: { city: 'Berlin \ud800', gender: '\udfff' },
    };
    const next = applyTriggerEvents(emptyFeatureState('2026-11-26T09:00:00Z'), [event], {
      asOf: '2026-11-26T09:00:01Z',
      bounds: DEFAULT_RFM_SCORE_BOUNDS,
    });
    assert.deepEqual([next.demographics.city, next.demographics.gender], ['Berlin \ufffd', '\ufffd']);
    for (const text of [next.demographics.city, next.demographics.gender]) {
      assert.equal(Buffer.from(String(text), 'utf8').toString('utf8'), text, 'round-trips through UTF-8');
    }
  });
});

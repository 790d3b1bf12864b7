import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRng, deriveSeed, mulberry32 } from '../../core/random.js';
import { sampleIndices } from '../../core/segmentation/random.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('the seeded generator', () => {
  it('is mulberry32: fixtures, test thresholds and trained models are pinned to its sequence', () => {
    const words = mulberry32(1);
    assert.deepEqual([words(), words(), words()], [2693262067, 11749833, 2265367787]);
    const rng = createRng(1);
    assert.equal(rng.next(), 2693262067 / 2 ** 32);
    assert.equal(rng.uint32(), 11749833);
  });

  it('repeats for a seed, differs across seeds, stays in [0, 1)', () => {
    const draw = (seed: number) => Array.from({ length: 1000 }, createRng(seed).next);
    const a = draw(1);
    assert.deepEqual(draw(1), a);
    assert.notDeepEqual(draw(2), a);
    assert.ok(a.every((x) => x >= 0 && x < 1));
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  });

  it('derives sub-stream seeds from names and numbers', () => {
    assert.equal(deriveSeed(42, 'customer', 0), 2693351062);
    assert.notEqual(deriveSeed(42, 'customer', 1), deriveSeed(42, 'customer', 0));
    assert.notEqual(deriveSeed(42, 'customer1'), deriveSeed(42, 'customer', 1));
  });

  it('makes version 4 UUIDs that never repeat within one generator', () => {
    const rng = createRng(3);
    const ids = Array.from({ length: 5000 }, () => rng.uuid());
    for (const id of ids.slice(0, 100)) assert.match(id, UUID_V4);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('drives segmentation sampling: sorted, distinct, reproducible', () => {
    const a = sampleIndices(1000, 100, 5);
    assert.equal(a.length, 100);
    assert.ok(a.every((v, i) => i === 0 || v > (a[i - 1] as number)));
    assert.deepEqual(sampleIndices(1000, 100, 5), a);
    assert.notDeepEqual(sampleIndices(1000, 100, 6), a);
  });
});

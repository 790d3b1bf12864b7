import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { agnes, type Cluster } from 'ml-hclust';
import {
  buildHierarchy,
  parentCount,
  parentGroups,
  parentSegmentOf,
  renumberHierarchy,
  wardTree,
} from '../../../core/segmentation/hierarchy.js';
import { parseSegmentModel } from '../../../core/segmentation/model.js';
import { trainSegmentModel } from '../../../core/segmentation/job.js';
import type { Preparation } from '../../../core/segmentation/prepare.js';
import { trainKMeans } from '../../../core/segmentation/train.js';
import { blobs } from './fixtures.js';

const prep: Preparation = {
  training_rows: 1000,
  features: [
    { name: 'recency_days', role: 'recency', weight: 1, log: false, fill: 30, min: 0, max: 365, missing_share: 0 },
    { name: 'orders_12m', role: 'frequency', weight: 1, log: true, fill: 2, min: 0, max: Math.log(51), missing_share: 0 },
    { name: 'email_clicks', role: 'email', weight: 1, log: false, fill: 1, min: 0, max: 20, missing_share: 0 },
  ],
};

/** Three groups far apart, each made of two sub-groups close together; sizes differ. */
const GROUPS = [
  [0.1, 0.1, 0.1],
  [0.9, 0.2, 0.5],
  [0.4, 0.9, 0.9],
];
const SUBGROUPS = GROUPS.flatMap((g) => [g.map((v) => v - 0.06), g.map((v, j) => (j === 0 ? v + 0.06 : v))]);

const partition = (root: Cluster, g: number) => JSON.stringify(parentGroups(root, g));

describe('nested segments (hierarchy.ts)', () => {
  it('recovers the three parent groups of six K-Means segments on data with known nesting', () => {
    const data = blobs(SUBGROUPS, 300, 0.012, 17);
    const fit = trainKMeans(data.matrix, data.nRows, data.dim, { k: 6, seed: 5, nInit: 4, parallel: false });
    // Which known group each K-Means segment holds (by majority of its rows).
    const groupOf = fit.centroids.map((_, c) => {
      const counts = [0, 0, 0];
      data.truth.forEach((t, r) => {
        if (fit.labels[r] === c) counts[Math.floor(t / 2)]! += 1;
      });
      return counts.indexOf(Math.max(...counts));
    });
    assert.deepEqual([...groupOf].sort(), [0, 0, 1, 1, 2, 2], 'K-Means found one segment per sub-group');
    const segments = fit.centroids.map((_, c) => ({ id: 10 + c, size: fit.sizes[c]! }));
    const h = buildHierarchy({ preparation: prep, centroids: fit.centroids, segments }, { min: 2, max: 5 });
    assert.equal(h.parents.length, 3, `parents: ${JSON.stringify(h.parents.map((p) => p.members))}`);
    for (const parent of h.parents) {
      const groups = new Set(parent.members.map((id) => groupOf[id - 10]));
      assert.equal(groups.size, 1, `parent ${parent.id} mixes known groups: ${parent.members}`);
      assert.equal(parent.members.length, 2);
      assert.equal(parent.id, Math.min(...parent.members), 'a parent takes the smallest id of its members');
      assert.equal(
        parent.size,
        parent.members.reduce((s, id) => s + fit.sizes[id - 10]!, 0),
      );
    }
    assert.equal(new Set(h.parents.map((p) => p.label)).size, 3, 'parent labels are unique');
    assert.equal(h.merges.length, 5);
    for (let i = 1; i < h.merges.length; i++) assert.ok(h.merges[i]!.cost >= h.merges[i - 1]!.cost, 'Ward costs never decrease');
  });

  it('with equal sizes it merges as ml-hclust agnes ward on squared distances', () => {
    const points = [
      [0, 0],
      [0.1, 0.05],
      [1, 1],
      [1.2, 0.9],
      [0.5, 2],
      [3, 0.1],
      [2.8, 0.3],
    ];
    const sq = points.map((a) => points.map((b) => (a[0]! - b[0]!) ** 2 + (a[1]! - b[1]!) ** 2));
    const library = agnes(sq, { method: 'ward', isDistanceMatrix: true });
    const ours = wardTree(
      points,
      points.map(() => 1),
    );
    for (let g = 1; g <= points.length; g++) assert.equal(partition(ours.root, g), partition(library, g), `${g} groups`);
    // The library's height on squared distances is twice the rise in the sum of squares.
    assert.ok(Math.abs(library.height - 2 * ours.merges.at(-1)!.cost) < 1e-9);
  });

  it('weights by segment size: a tiny segment joins its neighbour before two large ones join', () => {
    const points = [[0], [1], [2.1]];
    // Unweighted, 0 and 1 are closest; with 1,000 rows each, splitting them costs far more than absorbing 1 row.
    const unweighted = agnes(
      points.map((a) => points.map((b) => (a[0]! - b[0]!) ** 2)),
      { method: 'ward', isDistanceMatrix: true },
    );
    assert.equal(partition(unweighted, 2), JSON.stringify([[0, 1], [2]]));
    const weighted = wardTree(points, [1000, 1000, 1]);
    assert.equal(partition(weighted.root, 2), JSON.stringify([[0], [1, 2]]));
    assert.deepEqual(weighted.merges[0], { left: 1, right: 2, cost: ((1000 * 1) / 1001) * 1.1 ** 2, size: 1001 });
  });

  it('parentCount cuts before the largest jump within [min, max]', () => {
    const merges = [0.1, 0.12, 0.15, 3, 3.5].map((cost, i) => ({ left: 0, right: i + 1, cost, size: 1 }));
    assert.equal(parentCount(merges, { min: 2, max: 4 }), 3);
    assert.equal(parentCount(merges, { min: 4, max: 5 }), 4, 'the best within the range');
    assert.equal(parentCount(merges, { min: 2, max: 2 }), 2);
    assert.equal(parentCount([], { min: 2, max: 4 }), 1, 'one segment is its own parent');
  });

  it('a trained model records the tree; an artifact whose parents miss a segment is refused', () => {
    const data = blobs(GROUPS, 200, 0.03, 3);
    const rows = Array.from({ length: data.nRows }, (_, r) => ({
      recency_days: data.matrix[r * 3]! * 365,
      orders_12m: Math.exp(data.matrix[r * 3 + 1]! * Math.log(51)) - 1,
      email_clicks: data.matrix[r * 3 + 2]! * 20,
    }));
    const model = trainSegmentModel(
      rows,
      {
        features: prep.features.map((f) => ({ name: f.name, weight: f.weight, log: f.log, role: f.role })),
        kMin: 2,
        kMax: 5,
        stabilityResamples: 2,
        nInit: 2,
        parentSegments: { min: 2, max: 3 },
      },
      { version: 'v1', createdAt: '2026-12-01T00:00:00Z' },
    );
    assert.ok(model.hierarchy, 'the model has a hierarchy');
    const ids = model.segments.map((s) => s.id);
    assert.deepEqual(model.hierarchy.parents.flatMap((p) => p.members).sort(), [...ids].sort());
    for (const id of ids) assert.notEqual(parentSegmentOf(model, id), null);
    const broken = { ...model, hierarchy: { ...model.hierarchy, parents: model.hierarchy.parents.slice(1) } };
    assert.throws(() => parseSegmentModel(broken), /hierarchy\.parents.*expected each of/s);
  });
});

describe('renumberHierarchy', () => {
  it('follows the segment ids relabelFromCurrent gives, parents keeping the smallest member id', () => {
    const h = buildHierarchy(
      { preparation: prep, centroids: SUBGROUPS, segments: SUBGROUPS.map((_, i) => ({ id: i, size: 100 })) },
      { min: 3, max: 3 },
    );
    const renumbered = renumberHierarchy(h, [0, 1, 2, 3, 4, 5], [7, 3, 9, 8, 1, 2]);
    assert.deepEqual(
      renumbered.parents.map((p) => [p.id, p.members]),
      [
        [3, [3, 7]],
        [8, [8, 9]],
        [1, [1, 2]],
      ],
    );
  });
});

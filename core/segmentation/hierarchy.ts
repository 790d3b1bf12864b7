/**
 * Nested segments: a hierarchy over a model's segments by agglomerative clustering (Ward linkage
 * on the centroids, each weighted by its segment's size), and the parent level cut from it.
 *
 * ml-hclust's agnes has Ward linkage but starts every leaf at size 1 (its Cluster constructor) and
 * takes no weights, so it would join two small segments and two large ones at the same cost. The
 * merge loop here is that of agnes with sizes (as R's hclust `members`): the cost of joining A and
 * B is the rise in within-group sum of squares, nA nB / (nA + nB) * |cA - cB|^2, the Lance-Williams
 * Ward update written on centroids. With equal sizes it merges exactly as agnes' `ward` on squared
 * distances (test/unit/segmentation/hierarchy.test.ts checks it against the library). The tree is
 * returned as ml-hclust Clusters, so the library's `group` picks the parent level.
 */
import { Cluster } from 'ml-hclust';
import { z } from 'zod';
import { SegmentSchema, describeParents } from './labels.js';
import type { Preparation } from './prepare.js';

export const ParentRuleSchema = z
  .object({
    /** Fewest parent groups (at most the number of segments). */
    min: z.number().int().min(1).default(2),
    /** Most parent groups. */
    max: z.number().int().min(1).default(4),
  })
  .refine((r) => r.min <= r.max, { message: 'expected min <= max' });
export type ParentRule = z.output<typeof ParentRuleSchema>;
export const PARENT_RULE_DEFAULTS: ParentRule = { min: 2, max: 4 };

/** One merge of the dendrogram: nodes 0..k-1 are centroid indices, node k+i is merge i (scipy's layout). */
export const MergeSchema = z.object({
  left: z.number().int().nonnegative(),
  right: z.number().int().nonnegative(),
  /** Rise in the within-group sum of squares (prepared space, training rows) from this merge. */
  cost: z.number().nonnegative(),
  /** Training rows under the merged node. */
  size: z.number().int().nonnegative(),
});

export const ParentSegmentSchema = SegmentSchema.extend({
  /** Ids of the segments in this parent group. */
  members: z.array(z.number().int().nonnegative()).min(1),
});
export type ParentSegment = z.infer<typeof ParentSegmentSchema>;

export const HierarchySchema = z.object({
  linkage: z.literal('ward'),
  weights: z.literal('segment_size'),
  merges: z.array(MergeSchema),
  rule: z.object({ min: z.number().int().min(1), max: z.number().int().min(1) }),
  /** The parent level; a parent's id is the smallest id among its members, so it follows the segment ids across models. */
  parents: z.array(ParentSegmentSchema).min(1),
});
export type Hierarchy = z.infer<typeof HierarchySchema>;
export type Merge = z.infer<typeof MergeSchema>;

interface Node {
  cluster: Cluster;
  size: number;
  centroid: number[];
  id: number;
}

function squaredDistance(a: readonly number[], b: readonly number[]): number {
  let d = 0;
  for (let j = 0; j < a.length; j++) {
    const t = a[j]! - b[j]!;
    d += t * t;
  }
  return d;
}

/** Ward's cost of merging two groups: the rise in their within-group sum of squares. */
function wardCost(a: Node, b: Node): number {
  const na = Math.max(a.size, Number.MIN_VALUE);
  const nb = Math.max(b.size, Number.MIN_VALUE);
  return ((na * nb) / (na + nb)) * squaredDistance(a.centroid, b.centroid);
}

/**
 * Size-weighted Ward over centroids. Segments with no training rows count as tiny, not absent,
 * so every segment is in the tree. Ties go to the pair found first (lowest node ids), as in agnes.
 */
export function wardTree(centroids: readonly (readonly number[])[], sizes: readonly number[]): { root: Cluster; merges: Merge[] } {
  const k = centroids.length;
  if (k === 0) throw new Error('wardTree: expected at least one centroid');
  if (sizes.length !== k) throw new Error(`wardTree: ${k} centroids but ${sizes.length} sizes`);
  let nodes: Node[] = centroids.map((c, i) => {
    const cluster = new Cluster();
    cluster.isLeaf = true;
    cluster.index = i;
    return { cluster, size: sizes[i]!, centroid: [...c], id: i };
  });
  const merges: Merge[] = [];
  while (nodes.length > 1) {
    let bi = 0;
    let bj = 1;
    let best = Infinity;
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) {
        const cost = wardCost(nodes[i]!, nodes[j]!);
        if (cost < best) [best, bi, bj] = [cost, i, j];
      }
    }
    const a = nodes[bi]!;
    const b = nodes[bj]!;
    const size = a.size + b.size;
    const wa = size > 0 ? a.size / size : 0.5;
    const cluster = new Cluster();
    cluster.children = [a.cluster, b.cluster];
    cluster.height = best;
    cluster.size = a.cluster.size + b.cluster.size;
    const merged: Node = {
      cluster,
      size,
      centroid: a.centroid.map((v, j) => wa * v + (1 - wa) * b.centroid[j]!),
      id: k + merges.length,
    };
    merges.push({ left: Math.min(a.id, b.id), right: Math.max(a.id, b.id), cost: best, size });
    nodes = [...nodes.filter((_, i) => i !== bi && i !== bj), merged];
  }
  return { root: nodes[0]!.cluster, merges };
}

/**
 * How many parent groups: within [min, max] (and at most k), the cut before the largest jump in
 * merge cost relative to the merge before it, i.e. where joining further groups would cost the most
 * for what the last join cost. `merges` must be Ward's (costs never decrease).
 */
export function parentCount(merges: readonly Merge[], rule: ParentRule): number {
  const k = merges.length + 1;
  const lo = Math.min(rule.min, k);
  const hi = Math.min(rule.max, k - 1);
  let best = lo;
  let bestJump = -Infinity;
  // g = k (every segment its own parent) has no merge before it to compare with: only when the rule leaves nothing else.
  for (let g = Math.max(lo, 2); g <= hi; g++) {
    // With g groups, the next merge is merges[k - g]; the last one made is merges[k - g - 1].
    const jump = merges[k - g]!.cost / Math.max(merges[k - g - 1]!.cost, 1e-12);
    if (jump > bestJump) [best, bestJump] = [g, jump];
  }
  return best;
}

/** Centroid indices per parent group, each group sorted, groups ordered by their first index. */
export function parentGroups(root: Cluster, groups: number): number[][] {
  return root
    .group(groups)
    .children.map((c) => c.indices().sort((a, b) => a - b))
    .sort((a, b) => a[0]! - b[0]!);
}

export interface SegmentsForHierarchy {
  preparation: Preparation;
  centroids: readonly (readonly number[])[];
  segments: readonly { id: number; size: number }[];
}

/** The hierarchy of a model's segments: the Ward tree, the parent level by `rule`, each parent labelled from its members. */
export function buildHierarchy(model: SegmentsForHierarchy, ruleInput: Partial<ParentRule> = {}): Hierarchy {
  const rule = ParentRuleSchema.parse(ruleInput);
  const sizes = model.segments.map((s) => s.size);
  const { root, merges } = wardTree(model.centroids, sizes);
  const groups = parentGroups(root, parentCount(merges, rule));
  const described = describeParents(model.preparation, model.centroids, sizes, groups);
  const parents = groups.map((members, p) => {
    const ids = members.map((c) => model.segments[c]!.id).sort((a, b) => a - b);
    return { ...described[p]!, id: ids[0]!, members: ids };
  });
  return { linkage: 'ward', weights: 'segment_size', merges, rule: { min: rule.min, max: rule.max }, parents };
}

/** The same hierarchy after the segments were renumbered (relabelFromCurrent): old ids and new ids aligned by centroid index. */
export function renumberHierarchy(hierarchy: Hierarchy, oldIds: readonly number[], newIds: readonly number[]): Hierarchy {
  const to = new Map(oldIds.map((id, i) => [id, newIds[i]!]));
  const parents = hierarchy.parents.map((p) => {
    const members = p.members.map((id) => to.get(id) ?? id).sort((a, b) => a - b);
    return { ...p, id: members[0]!, members };
  });
  return { ...hierarchy, parents };
}

/** Parent id per segment id; throws when the hierarchy does not cover every segment exactly once. */
export function parentOfSegment(hierarchy: Hierarchy, segmentIds: readonly number[]): Map<number, number> {
  const map = new Map<number, number>();
  for (const parent of hierarchy.parents) {
    for (const id of parent.members) {
      if (map.has(id)) throw new Error(`hierarchy: segment ${id} is in parents ${map.get(id)} and ${parent.id}`);
      map.set(id, parent.id);
    }
  }
  const missing = segmentIds.filter((id) => !map.has(id));
  if (missing.length > 0 || map.size !== segmentIds.length) {
    throw new Error(`hierarchy: parents cover segments [${[...map.keys()].sort((a, b) => a - b)}], the model has [${segmentIds}]`);
  }
  return map;
}

/** The parent (id and label) of one segment of a model, or null for a model trained without a hierarchy. */
export function parentSegmentOf(model: { hierarchy?: Hierarchy | undefined }, segmentId: number): { id: number; label: string } | null {
  const parent = model.hierarchy?.parents.find((p) => p.members.includes(segmentId));
  return parent ? { id: parent.id, label: parent.label } : null;
}

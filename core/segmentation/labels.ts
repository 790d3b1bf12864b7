/**
 * Human labels for segments, from where each centroid sits relative to the
 * others on the features' marketing roles (recency, frequency, monetary,
 * tenure, engagement channels, discounts).
 *
 * Position is a size-weighted z-score across centroids in scaled space
 * (unweighted, after the log): how far a segment is from the average
 * customer, in units of how far segments typically are. Rules then claim
 * labels; the strongest claim wins each label, so labels are unique, and a
 * segment no rule fits gets a plain fallback ("mainstream", "low engagement").
 */
import { z } from 'zod';
import type { FeatureRole, Preparation } from './prepare.js';
import { toOriginalUnits } from './prepare.js';

export const SegmentSchema = z.object({
  /** Stable id: kept across model versions for the same group (stability.ts). */
  id: z.number().int().nonnegative(),
  label: z.string().min(1),
  /** Training rows in the segment. */
  size: z.number().int().nonnegative(),
  share: z.number().min(0).max(1),
  /** The centroid in raw feature units, keyed by feature name. */
  centroid: z.record(z.string(), z.number()),
  /** Features where the segment stands out, e.g. "monetary_90d high". */
  traits: z.array(z.string()),
});
export type Segment = z.infer<typeof SegmentSchema>;

/** |z| at or above this reads as "high" / "low". */
const STANDS_OUT = 0.5;

type RoleScores = Partial<Record<FeatureRole, number>>;

interface Rule {
  label: string;
  /** A claim strength, or null when the rule doesn't fit. */
  score(z: RoleScores): number | null;
}

const hi = (v: number | undefined): v is number => v !== undefined && v >= STANDS_OUT;
const lo = (v: number | undefined): v is number => v !== undefined && v <= -STANDS_OUT;

/** In priority order: on equal scores the earlier rule wins. */
const RULES: readonly Rule[] = [
  {
    label: 'high-value loyal',
    score: ({ monetary: m, frequency: f, recency: r }) => (hi(m) && hi(f) && (r === undefined || r <= 0) ? m + f - (r ?? 0) : null),
  },
  {
    label: 'at risk',
    score: ({ recency: r, monetary: m, frequency: f }) => {
      const value = Math.max(m ?? -Infinity, f ?? -Infinity);
      return hi(r) && value >= 0 ? r + value : null;
    },
  },
  {
    label: 'new',
    score: ({ tenure: t, frequency: f }) => (lo(t) && !hi(f) ? -t : null),
  },
  {
    label: 'lapsed',
    // Lapsed customers have gone quiet everywhere; still browsing a lot reads as window shopping.
    score: ({ recency: r, monetary: m, frequency: f, browse: b, app: a }) => {
      const value = Math.min(m ?? Infinity, f ?? Infinity);
      return hi(r) && value < 0 && !hi(b) && !hi(a) ? r - value : null;
    },
  },
  {
    label: 'window shoppers',
    score: ({ browse: b, cart: c, frequency: f, monetary: m }) => {
      const interest = Math.max(b ?? -Infinity, c ?? -Infinity);
      const buying = f ?? m;
      return interest >= STANDS_OUT && buying !== undefined && buying <= 0 ? interest - buying : null;
    },
  },
  { label: 'email-engaged', score: ({ email: e }) => (hi(e) ? e : null) },
  {
    label: 'app-first',
    score: ({ app: a, browse: b }) => (hi(a) && (b === undefined || a > b) ? a - Math.max(b ?? 0, 0) : null),
  },
  { label: 'bargain hunters', score: ({ discount: d }) => (hi(d) ? d : null) },
  { label: 'loyal regulars', score: ({ frequency: f }) => (hi(f) ? f : null) },
  { label: 'big spenders', score: ({ monetary: m }) => (hi(m) ? m : null) },
];

/** Engagement roles where higher is better; recency is the other way round. */
const ENGAGEMENT: readonly FeatureRole[] = ['frequency', 'monetary', 'email', 'app', 'browse', 'cart'];

/** Size-weighted z-scores of each feature across centroids, in scaled (unweighted) space. */
function featureZScores(prep: Preparation, centroids: readonly (readonly number[])[], shares: readonly number[]): number[][] {
  const k = centroids.length;
  return prep.features.map((f, j) => {
    const u = centroids.map((c) => (c[j] as number) / f.weight);
    let mean = 0;
    for (let c = 0; c < k; c++) mean += shares[c]! * u[c]!;
    let variance = 0;
    for (let c = 0; c < k; c++) variance += shares[c]! * (u[c]! - mean) ** 2;
    const sd = Math.sqrt(variance);
    return u.map((v) => (sd > 1e-12 ? (v - mean) / sd : 0));
  });
}

/** A label already taken gets a number ("low engagement 2"): the labeller could not tell the segments apart. */
function numbered(wanted: string, n: number): string {
  return `${wanted} ${n}`;
}

function uniqueLabel(wanted: string, taken: Set<string>): string {
  let label = wanted;
  for (let n = 2; taken.has(label); n++) label = numbered(wanted, n);
  taken.add(label);
  return label;
}

/**
 * The labels of `labels` that repeat another one with a number ("low engagement 2" beside
 * "low engagement"): segments a marketer cannot tell apart, so choose_k refuses their k.
 */
export function repeatedLabels(labels: readonly string[]): string[] {
  const all = new Set(labels);
  return labels.filter((label) => {
    const m = /^(.+) (\d+)$/.exec(label);
    return m !== null && Number(m[2]) >= 2 && all.has(m[1]!) && numbered(m[1]!, Number(m[2])) === label;
  });
}

/**
 * Describes and labels segments. `centroids` are in prepared space, aligned
 * with `sizes` (training rows per segment). Ids default to the centroid index;
 * stability.ts later carries ids and labels over from the current model.
 */
export function describeSegments(prep: Preparation, centroids: readonly (readonly number[])[], sizes: readonly number[]): Segment[] {
  const k = centroids.length;
  if (k === 0) throw new Error('describeSegments: expected at least one centroid');
  if (sizes.length !== k) throw new Error(`describeSegments: ${k} centroids but ${sizes.length} sizes`);
  const total = sizes.reduce((a, b) => a + b, 0);
  // With no sizes known (all zero), every segment counts the same.
  const shares = sizes.map((s) => (total > 0 ? s / total : 1 / k));
  const zByFeature = featureZScores(prep, centroids, shares);

  const roleScores: RoleScores[] = centroids.map((_, c) => {
    const sums: Partial<Record<FeatureRole, { total: number; n: number }>> = {};
    prep.features.forEach((f, j) => {
      if (!f.role) return;
      const acc = (sums[f.role] ??= { total: 0, n: 0 });
      acc.total += zByFeature[j]![c]!;
      acc.n += 1;
    });
    const out: RoleScores = {};
    for (const [role, acc] of Object.entries(sums) as [FeatureRole, { total: number; n: number }][]) out[role] = acc.total / acc.n;
    return out;
  });

  // Every fitting (segment, rule) claim, strongest first; each segment and each label is used once.
  const claims: { segment: number; rule: number; score: number }[] = [];
  roleScores.forEach((z, segment) => {
    RULES.forEach((rule, r) => {
      const score = rule.score(z);
      if (score !== null && Number.isFinite(score)) claims.push({ segment, rule: r, score });
    });
  });
  claims.sort((a, b) => b.score - a.score || a.rule - b.rule || a.segment - b.segment);
  const wanted = new Array<string | undefined>(k);
  const usedRules = new Set<number>();
  for (const claim of claims) {
    if (wanted[claim.segment] !== undefined || usedRules.has(claim.rule)) continue;
    wanted[claim.segment] = RULES[claim.rule]!.label;
    usedRules.add(claim.rule);
  }

  const taken = new Set<string>();
  // Labels from rules first, so a fallback never takes a rule's name.
  for (const w of wanted) if (w !== undefined) taken.add(w);
  return centroids.map((centroid, c) => {
    let label = wanted[c];
    if (label === undefined) {
      const engagement = ENGAGEMENT.map((role) => roleScores[c]![role]).filter((v): v is number => v !== undefined);
      const mean = engagement.length > 0 ? engagement.reduce((a, b) => a + b, 0) / engagement.length : 0;
      label = uniqueLabel(mean <= -STANDS_OUT / 2 ? 'low engagement' : 'mainstream', taken);
    }
    const original = toOriginalUnits(prep, centroid);
    const traits: string[] = [];
    prep.features.forEach((f, j) => {
      const zj = zByFeature[j]![c]!;
      if (zj >= STANDS_OUT) traits.push(`${f.name} high`);
      else if (zj <= -STANDS_OUT) traits.push(`${f.name} low`);
    });
    return {
      id: c,
      label,
      size: sizes[c]!,
      share: shares[c]!,
      centroid: Object.fromEntries(prep.features.map((f, j) => [f.name, original[j]!])),
      traits,
    };
  });
}

/**
 * Describes the parent groups of a hierarchy (hierarchy.ts) from their members: each parent is
 * the size-weighted mean of its members' centroids (prepared space) holding their rows, labelled
 * by the same rules one level up. `groups` are centroid indices per parent.
 */
export function describeParents(
  prep: Preparation,
  centroids: readonly (readonly number[])[],
  sizes: readonly number[],
  groups: readonly (readonly number[])[],
): Segment[] {
  const parentSizes = groups.map((members) => members.reduce((s, c) => s + sizes[c]!, 0));
  const parentCentroids = groups.map((members, p) =>
    prep.features.map((_, j) => {
      let v = 0;
      for (const c of members) v += (parentSizes[p]! > 0 ? sizes[c]! / parentSizes[p]! : 1 / members.length) * centroids[c]![j]!;
      return v;
    }),
  );
  return describeSegments(prep, parentCentroids, parentSizes);
}

/**
 * `npm run segment -- --compare`: a seeded sample of marts.customer_features (the table the
 * nightly extract reads), prepared with the configured features, through K-Means, hierarchical
 * and DBSCAN (core/segmentation/compare.ts), printed as one table and a recommendation.
 */
import type { BigQuery } from '@google-cloud/bigquery';
import type { Config } from '../../core/config.js';
import {
  compareAlgorithms,
  describeSegments,
  fitPreparation,
  prepareMatrix,
  type Comparison,
  type FeatureRow,
} from '../../core/segmentation/index.js';
import { qualifiedTable } from '../../elt/names.js';
import { printTable, type Cell } from './table.js';

export const COMPARE_SAMPLE_DEFAULT = 2000;

/** Up to `size` customers in a repeatable order (a hash of the seed and the id), their features as numbers or null. */
export async function readCompareSample(
  bigquery: BigQuery,
  config: Config,
  size: number,
): Promise<{ rows: FeatureRow[]; population: number }> {
  const specs = config.segmentation.features;
  const features = specs.map((f) => f.name);
  const numeric = specs.map((f) => (f.kind ?? 'numeric') === 'numeric');
  const table = qualifiedTable(config.gcp.projectId, config.warehouse.marts, 'customer_features');
  const select = features.map((f, j) => `CAST(\`${f}\` AS ${numeric[j] ? 'FLOAT64' : 'STRING'}) AS \`${f}\``).join(', ');
  const options = { location: config.gcp.location, params: { salt: String(config.segmentation.seed) }, types: { salt: 'STRING' } };
  const [[count]] = await bigquery.query({ query: `SELECT COUNT(*) AS n FROM ${table}`, location: config.gcp.location });
  const [rows] = await bigquery.query({
    ...options,
    query: `SELECT ${select} FROM ${table} ORDER BY FARM_FINGERPRINT(CONCAT(@salt, customer_id)), customer_id LIMIT ${Math.floor(size)}`,
  });
  return {
    population: Number((count as { n: unknown }).n),
    rows: (rows as Record<string, unknown>[]).map((r) =>
      Object.fromEntries(features.map((f, j) => [f, featureValue(r[f], numeric[j] ?? true)])),
    ),
  };
}

function featureValue(v: unknown, numeric: boolean): number | string | null {
  if (numeric) return typeof v === 'number' && Number.isFinite(v) ? v : null;
  return typeof v === 'string' ? v : null;
}

/** The comparison of the three algorithms on the rows, with the nightly run's k rules and settings. */
export function compareSample(rows: readonly FeatureRow[], config: Config): Comparison {
  const s = config.segmentation;
  const preparation = fitPreparation(rows, s.features);
  const dim = preparation.features.length;
  return compareAlgorithms(prepareMatrix(preparation, rows), rows.length, dim, {
    seed: s.seed,
    kMin: s.kMin,
    kMax: s.kMax,
    minSegmentShare: s.minSegmentShare,
    silhouetteSampleSize: s.silhouetteSampleSize,
    tolerance: s.kTolerance,
    stabilityResamples: s.stabilityResamples,
    stabilitySampleSize: s.stabilitySampleSize,
    minStability: s.minKStability,
    nInit: s.nInit,
    hierarchicalSampleSize: s.hierarchicalSampleSize,
    labelSegments: (centroids, sizes) => describeSegments(preparation, centroids, sizes).map((g) => g.label),
  });
}

export const COMPARE_COLUMNS = [
  'algorithm',
  'parameters',
  'clusters',
  'sizes',
  'noise',
  'silhouette',
  'Davies-Bouldin',
  'Calinski-Harabasz',
  'stability',
] as const;

const fmt = (x: number | null, digits: number) => (x === null ? '-' : x.toFixed(digits));

export function comparisonRows(cmp: Comparison): Cell[][] {
  return cmp.reports.map((r) => [
    r.algorithm,
    r.parameters,
    r.clusters,
    r.sizes.join(' '),
    `${(r.noise_share * 100).toFixed(1)}%`,
    fmt(r.silhouette, 3),
    fmt(r.davies_bouldin, 3),
    fmt(r.calinski_harabasz, 1),
    fmt(r.stability, 3),
  ]);
}

/** What --json prints: the comparison without the per-row labels. */
export function comparisonJson(cmp: Comparison, population: number) {
  return { ...cmp, population, reports: cmp.reports.map(({ labels: _labels, ...r }) => r) };
}

export function printComparison(cmp: Comparison, population: number): void {
  console.log(`${cmp.rows} of ${population} customers, ${cmp.dim} prepared features\n`);
  printTable([...COMPARE_COLUMNS], comparisonRows(cmp), {
    indent: 2,
    align: ['left', 'left', 'right', 'left', 'right', 'right', 'right', 'right', 'right'],
  });
  console.log(`\nrecommended: ${cmp.recommendation.algorithm}: ${cmp.recommendation.reason}`);
  console.log(
    'silhouette and Davies-Bouldin/Calinski-Harabasz over clustered rows (noise left out); stability = mean ARI between fits on bootstrap resamples',
  );
}

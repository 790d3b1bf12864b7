import type { TableField } from '@google-cloud/bigquery';
import { ApplicationFailure } from '@temporalio/common';
import type { DagTaskInput } from '../../core/dag-task.js';
import { defaultSampleSize } from '../../core/segmentation/index.js';
import { ExtractSchema, type Extract } from '../../stores/model-registry.js';
import { type SegmentationContext } from './context.js';
import { heartbeat } from '../heartbeat.js';

/** Feature rows of every customer (in pages), or of a deterministic uniform sample when there are more than the sample size. */
export async function extract(ctx: SegmentationContext, input: DagTaskInput) {
  const { bigquery, marts, settings, query, table } = ctx;
  const version = ctx.versionOf(input);
  const log = ctx.taskLog(input, version);
  const done = await ctx.readStep(version, 'extract', ExtractSchema);
  if (done) return { version, population: done.population, rows: done.ids.length, sampled: done.sampled, reused: true };

  const specs = ctx.features();
  const features = specs.map((f) => f.name);
  // Categorical and ordinal values stay strings (prepare.ts and the assignment SQL read them so).
  const numeric = specs.map((f) => (f.kind ?? 'numeric') === 'numeric');
  const source = bigquery.dataset(marts).table('customer_features');
  const [exists] = await source.exists();
  if (!exists) {
    throw ApplicationFailure.nonRetryable(
      `${marts}.customer_features does not exist; run the hourly_pipeline DAG first`,
      'NoCustomerFeatures',
    );
  }
  const [meta] = await source.getMetadata();
  const have = new Set(((meta as { schema?: { fields?: TableField[] } }).schema?.fields ?? []).map((f) => f.name));
  const missing = ['customer_id', ...features].filter((c) => !have.has(c));
  if (missing.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `${marts}.customer_features lacks column(s) ${missing.join(', ')} named by the segmentation features; fix the features in config/segmentation.json (or SEGFLOW_SEGMENT_FEATURES) or the ELT model`,
      'InvalidSegmentationSettings',
    );
  }
  const [countRow] = await query(`SELECT COUNT(*) AS n FROM ${table('customer_features')}`);
  const population = Number(countRow?.n ?? 0);
  if (population === 0)
    throw ApplicationFailure.nonRetryable(`${marts}.customer_features is empty; nothing to segment`, 'NoCustomerFeatures');
  // Unless configured, the sample grows with the population: 5% of it, 5,000 to 50,000 customers,
  // the size bench:segment measures against scikit-learn.
  const sampleSize = settings.sampleSize ?? defaultSampleSize(population);
  const sampled = population > sampleSize;
  // A hash of (version, customer) is uniform and repeatable: a retry draws the same sample, the next night a new one.
  // (RAND() is not usable: the emulator evaluates it once per query.)
  const threshold = sampled ? Math.ceil((sampleSize / population) * 1_000_000) : 1_000_000;
  const filter = sampled ? `MOD(ABS(FARM_FINGERPRINT(CONCAT(@salt, customer_id))), 1000000) < ${threshold}` : 'TRUE';
  const select = features.map((f, j) => `CAST(\`${f}\` AS ${numeric[j] ? 'FLOAT64' : 'STRING'}) AS \`${f}\``).join(', ');
  const ids: string[] = [];
  const columns: (number | string | null)[][] = features.map(() => []);
  let after = '';
  for (let page = 1; ; page++) {
    const rows = await query(
      `SELECT customer_id, ${select} FROM ${table('customer_features')} WHERE ${filter} AND customer_id > @after ORDER BY customer_id LIMIT ${settings.pageSize}`,
      { after, ...(sampled ? { salt: version } : {}) },
    );
    for (const row of rows) {
      ids.push(String(row.customer_id));
      features.forEach((f, j) => {
        const v = row[f];
        if (numeric[j]) columns[j]!.push(typeof v === 'number' && Number.isFinite(v) ? v : null);
        else columns[j]!.push(typeof v === 'string' ? v : null);
      });
    }
    heartbeat({ stage: 'extract', page, rows: ids.length });
    log.info({ page, rows: ids.length, population, sampled }, 'extracted a page of customer features');
    if (rows.length < settings.pageSize) break;
    after = ids[ids.length - 1]!;
  }
  const result: Extract = { version, population, sampled, threshold, features, ids, columns };
  await ctx.writeStep(version, 'extract', result);
  return { version, population, rows: ids.length, sampled, reused: false };
}

import type { DagTaskInput } from '../../core/dag-task.js';
import { assignmentSql } from '../../core/segmentation/index.js';
import { CUSTOMER_SEGMENTS_SCHEMA, readSegmentSizes } from '../../stores/model-registry.js';
import { whileHeartbeating } from '../heartbeat.js';
import { type SegmentationContext } from './context.js';

/** Assigns every customer in BigQuery (generated SQL), replacing this version's rows. */
export async function assignAll(ctx: SegmentationContext, input: DagTaskInput) {
  const { query, table } = ctx;
  const version = ctx.versionOf(input);
  const log = ctx.taskLog(input, version);
  const model = await ctx.candidateModel(version);
  await ctx.ensureTable('customer_segments', CUSTOMER_SEGMENTS_SCHEMA);
  const gen = assignmentSql(model, { sourceTable: `${ctx.marts}.customer_features` });
  await query(`DELETE FROM ${table('customer_segments')} WHERE model_version = @model_version`, { model_version: version });
  const started = Date.now();
  await query(
    `INSERT INTO ${table('customer_segments')} (customer_id, model_version, segment_id, segment_label, parent_segment, distance, margin, assigned_at)\n` +
      `SELECT customer_id, model_version, segment_id, segment_label, parent_segment, distance, margin, @assigned_at AS assigned_at FROM (\n${gen.sql})`,
    { ...gen.params, segment_labels: gen.params.segment_labels ?? [], assigned_at: new Date(input.interval.end) },
  );
  const sizes = await whileHeartbeating(() => readSegmentSizes(ctx, version), 'query');
  const customers = sizes.reduce((s, r) => s + r.customers, 0);
  log.info({ customers, ms: Date.now() - started, sizes }, 'every customer assigned in BigQuery');
  return { version, customers, sizes };
}

/**
 * syncProfiles: the last task of hourly_pipeline and nightly_segmentation. Reads
 * the customers whose features the run recomputed (hourly: those touched by the
 * interval; nightly: everyone), assigns each with the current model (the same
 * code the batch SQL mirrors), and bulk-writes the online profiles that changed.
 */
import type { BigQuery } from '@google-cloud/bigquery';
import type { Storage } from '@google-cloud/storage';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { Profile } from '../core/profile.js';
import { assignCustomer, customerFeatureRow } from '../core/segmentation/assign.js';
import type { SegmentModel } from '../core/segmentation/model.js';
import { qualifiedTable } from '../elt/names.js';
import type { DagTaskInput } from '../core/dag-task.js';
import type { BulkWriteSummary } from '../stores/profiles.js';
import { heartbeat } from './heartbeat.js';
import { loadCurrentModel } from '../stores/model-registry.js';
import { NIGHTLY_SEGMENTATION_DAG } from '../core/dag-ids.js';

export interface ProfileSyncDeps {
  bigquery: BigQuery;
  storage: Storage;
  config: Config;
  logger: Logger;
  writeProfilesBulk: (profiles: AsyncIterable<Profile>) => Promise<BulkWriteSummary>;
}

export interface SyncProfilesResult {
  skipped?: 'no_current_model';
  modelVersion?: string;
  summary?: BulkWriteSummary;
}

const PAGE_SIZE = 5000;

interface FeatureRow {
  customer_id: string;
  [column: string]: unknown;
}

const DEMOGRAPHIC_COLUMNS = ['age', 'gender', 'country', 'income_band'] as const;
const NON_FEATURE_COLUMNS = new Set(['customer_id', 'first_seen_at', 'features_as_of', 'updated_at', ...DEMOGRAPHIC_COLUMNS]);

/** BigQuery returns NUMERIC/BIGNUMERIC as objects and INT64 as numbers or strings; features are plain numbers. */
function toNumber(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  const n = Number(typeof v === 'object' && v !== null && 'value' in v ? (v as { value: unknown }).value : v);
  return Number.isFinite(n) ? n : null;
}

export function profileFromFeatures(row: FeatureRow, model: SegmentModel, intervalEnd: string, now: Date): Profile {
  const features: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(row)) {
    if (NON_FEATURE_COLUMNS.has(k)) continue;
    const n = toNumber(v);
    if (n !== null || v === null) features[k] = n;
  }
  const demographics = { age: toNumber(row.age), gender: row.gender, country: row.country, income_band: row.income_band };
  const assignment = assignCustomer(model, customerFeatureRow(features, demographics));
  const score = (k: string) => Math.min(5, Math.max(1, Math.round(features[k] ?? 1)));
  // Not parsed here: writeProfilesBulk validates, counts and logs invalid profiles without failing the rest.
  const profile: Profile = {
    customer_id: row.customer_id,
    segment_id: assignment.segmentId,
    segment_label: assignment.label,
    // Always written (null without a hierarchy): a bulk update keeps fields it does not name.
    parent_segment: assignment.parent,
    model_version: model.version,
    features,
    rfm: {
      recency_days: features.recency_days ?? null,
      frequency: Math.max(0, Math.round(features.frequency ?? 0)),
      monetary: Math.max(0, features.monetary ?? 0),
      r_score: score('r_score'),
      f_score: score('f_score'),
      m_score: score('m_score'),
    },
    demographics: {
      age: toNumber(row.age),
      gender: (row.gender as string | null) ?? null,
      country: (row.country as string | null) ?? null,
      income_band: (row.income_band as Profile['demographics']['income_band']) ?? null,
    },
    updated_at: now.toISOString(),
    source_event_time: intervalEnd,
  };
  return profile;
}

export function createProfileSyncActivities({ bigquery, storage, config, logger, writeProfilesBulk }: ProfileSyncDeps) {
  const table = qualifiedTable(config.gcp.projectId, config.warehouse.marts, 'customer_features');

  async function* rows(query: string, params: Record<string, unknown>, log: Logger): AsyncGenerator<FeatureRow> {
    const [job] = await bigquery.createQueryJob({ query, params, location: config.gcp.location });
    let pageToken: string | undefined;
    let read = 0;
    do {
      const [page, next] = await job.getQueryResults({ maxResults: PAGE_SIZE, pageToken, autoPaginate: false });
      for (const r of page as FeatureRow[]) yield r;
      read += page.length;
      pageToken = (next as { pageToken?: string } | null)?.pageToken ?? undefined;
      heartbeat({ read });
      log.debug({ read }, 'profile sync: features read');
    } while (pageToken);
  }

  return {
    async syncProfiles(input: DagTaskInput): Promise<SyncProfilesResult> {
      const log = logger.child({ activity: 'syncProfiles', dag: input.dagId, interval: input.interval });
      const model = await loadCurrentModel(storage, config.lake.bucket);
      if (!model) {
        log.warn('no current segmentation model yet: profiles are synced after the first nightly_segmentation promotes one');
        return { skipped: 'no_current_model' };
      }
      // Hourly runs recompute only the customers their interval touched (features_as_of marks them).
      const everyone = input.dagId === NIGHTLY_SEGMENTATION_DAG;
      const query = everyone ? `SELECT * FROM ${table}` : `SELECT * FROM ${table} WHERE features_as_of = @interval_end`;
      const params = everyone ? {} : { interval_end: new Date(input.interval.end) };
      const now = new Date();
      const profiles = (async function* () {
        for await (const row of rows(query, params, log)) yield profileFromFeatures(row, model, input.interval.end, now);
      })();
      const summary = await writeProfilesBulk(profiles);
      log.info({ modelVersion: model.version, ...summary }, 'profiles synced');
      if (summary.failed > 0) throw new Error(`profile sync: ${summary.failed} profile writes failed; a retry skips those already written`);
      return { modelVersion: model.version, summary };
    },
  };
}

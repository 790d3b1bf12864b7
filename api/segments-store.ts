/**
 * The segments API's source on the model registry: artifacts and current.json in GCS,
 * marts.segment_models, marts.customer_segments and marts.segment_stability in BigQuery, and
 * the last DAG runs from Temporal's visibility.
 */
import type { BigQuery } from '@google-cloud/bigquery';
import type { Storage } from '@google-cloud/storage';
import { Client, Connection } from '@temporalio/client';
import type { Config } from '../core/config.js';
import type { SegmentModel } from '../core/segmentation/index.js';
import { temporalConnectionSettings, workflowUiUrl } from '../core/temporal-connection.js';
import {
  listRegisteredModels,
  loadCurrentPointer,
  loadModelVersion,
  queryMarts,
  readSegmentSizes,
  readStabilityRows,
  readTransitions,
  type WarehouseDeps,
  isoOf,
} from '../stores/model-registry.js';
import type { DagRun, MemberRow, SegmentsSource, VersionSize } from './segments.js';

/** Artifacts never change once written, so a few are kept in memory; current.json is read on every request. */
const CACHED_ARTIFACTS = 16;

export function createRegistrySegmentsSource(deps: {
  bigquery: BigQuery;
  storage: Storage;
  config: Pick<Config, 'gcp' | 'warehouse' | 'lake'> & Partial<Pick<Config, 'segmentation'>>;
  /** Where the freshness view reads the last DAG runs; without it the view says Temporal is not configured. */
  runs?: DagRunsReader;
}): SegmentsSource {
  const bucket = deps.config.lake.bucket;
  const warehouse: WarehouseDeps = deps;
  const artifacts = new Map<string, SegmentModel>();
  return {
    listModels: () => listRegisteredModels(deps),
    currentVersion: async () => (await loadCurrentPointer(deps.storage, bucket))?.version ?? null,
    async model(version) {
      const cached = artifacts.get(version);
      if (cached) return cached;
      const model = await loadModelVersion(deps.storage, bucket, version);
      if (model === null) return null;
      if (artifacts.size >= CACHED_ARTIFACTS) artifacts.delete(artifacts.keys().next().value!);
      artifacts.set(version, model);
      return model;
    },
    sizes: (version) => readSegmentSizes(deps, version),
    async members(version, segmentId, after, limit) {
      const rows =
        (await queryMarts<Record<string, unknown>>(
          warehouse,
          `SELECT customer_id, distance, margin, assigned_at FROM customer_segments
           WHERE model_version = @v AND segment_id = @s AND customer_id > @after
           ORDER BY customer_id LIMIT @n`,
          // Numbers as strings: the BigQuery emulator refuses a JSON number as a query parameter value.
          { v: version, s: String(segmentId), after, n: String(limit) },
          { v: 'STRING', s: 'INT64', after: 'STRING', n: 'INT64' },
        )) ?? [];
      return rows.map((r): MemberRow => ({
        customer_id: String(r.customer_id),
        distance: numberOrNull(r.distance),
        margin: numberOrNull(r.margin),
        assigned_at: isoOf(r.assigned_at),
      }));
    },
    stability: (limit) => readStabilityRows(warehouse, { limit }),
    async versionSizes() {
      const rows =
        (await queryMarts<Record<string, unknown>>(
          warehouse,
          `SELECT model_version, segment_id, ANY_VALUE(segment_label) AS segment_label, COUNT(*) AS customers
           FROM customer_segments GROUP BY model_version, segment_id`,
          {},
          {},
        )) ?? [];
      return rows.map((r): VersionSize => ({
        model_version: String(r.model_version),
        segment_id: Number(r.segment_id),
        segment_label: String(r.segment_label),
        customers: Number(r.customers),
      }));
    },
    transitions: async (from, to) => (await readTransitions(warehouse, from, to)).cells,
    thresholds: () => deps.config.segmentation?.thresholds ?? null,
    ...(deps.runs ? { recentRuns: deps.runs.recentRuns } : {}),
  };
}

export interface DagRunsReader {
  recentRuns(dagId: string, limit: number): Promise<DagRun[]>;
  close(): Promise<void>;
}

/** The last runs of a DAG from Temporal's visibility (the runDag workflows with its DagId search attribute). */
export function createTemporalRunsReader(config: Pick<Config, 'temporal'>): DagRunsReader {
  // Lazy: the API starts (and serves profiles) while Temporal is still coming up.
  const connection = Connection.lazy(temporalConnectionSettings(config as Config));
  const client = new Client({ connection, namespace: config.temporal.namespace });
  return {
    async recentRuns(dagId, limit) {
      const runs: DagRun[] = [];
      const query = `WorkflowType = 'runDag' AND DagId = '${dagId.replace(/[^a-z0-9_]/g, '')}'`;
      for await (const info of client.workflow.list({ query, pageSize: limit })) {
        runs.push({
          workflow_id: info.workflowId,
          run_id: info.runId,
          status: info.status.name,
          start_time: info.startTime.toISOString(),
          close_time: info.closeTime?.toISOString() ?? null,
          url: workflowUiUrl(config.temporal.uiUrl, config.temporal.namespace, info.workflowId, info.runId),
        });
        if (runs.length >= limit) break;
      }
      return runs.sort((a, b) => b.start_time.localeCompare(a.start_time));
    },
    close: () => connection.close(),
  };
}

function numberOrNull(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

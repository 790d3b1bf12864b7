/**
 * What the nightly_segmentation tasks share: the clients and settings, BigQuery queries and
 * tables of the marts dataset, the run state of a version (stores/model-registry.ts) with the
 * Temporal failures a task raises when it is missing or invalid, and heartbeats.
 */
import type { BigQuery, TableField } from '@google-cloud/bigquery';
import type { Storage } from '@google-cloud/storage';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { Alert } from '../../core/alerts.js';
import type { Config } from '../../core/config.js';
import type { DagTaskInput } from '../../core/dag-task.js';
import type { Logger } from '../../core/logger.js';
import {
  parseSegmentModel,
  type FeatureRow,
  type FeatureSpec,
  type SegmentModel,
  type trainKMeans,
} from '../../core/segmentation/index.js';
import { modelVersionFor } from '../../core/segmentation/model.js';
import { qualifiedTable } from '../../elt/names.js';
import { readStep, runObjectName, writeStep, type Extract, type Trained } from '../../stores/model-registry.js';
import { createAlertActivities } from '../alerts.js';
import { whileHeartbeating } from '../heartbeat.js';

export interface SegmentationDeps {
  bigquery: BigQuery;
  storage: Storage;
  config: Config;
  logger: Logger;
  /** Alert delivery; defaults to the raiseAlert activity's implementation with the configured channels. */
  raiseAlert?: (alert: Alert) => Promise<unknown>;
}

type Param = string | string[] | Date;

/** What a step stores of a k-means fit; `restarts` counts every restart behind it. */
export function trainedRecord(fit: ReturnType<typeof trainKMeans>, restarts: number): Trained {
  const { k, centroids, sizes, inertia, iterations, converged, seed } = fit;
  return { k, centroids, sizes, inertia, iterations, converged, seed, restarts };
}

export function extractRows(extract: Extract): FeatureRow[] {
  return extract.ids.map((_, r) => Object.fromEntries(extract.features.map((f, j) => [f, extract.columns[j]![r]!])));
}

/** Segments of two models can be matched only when both were prepared from the same features, in order. */
export function sameFeatures(a: SegmentModel, b: SegmentModel): boolean {
  return a.preparation.features.map((f) => f.name).join(',') === b.preparation.features.map((f) => f.name).join(',');
}

export type SegmentationContext = ReturnType<typeof createSegmentationContext>;

export function createSegmentationContext(deps: SegmentationDeps) {
  const { bigquery, storage, config, logger } = deps;
  const bucket = config.lake.bucket;
  const marts = config.warehouse.marts;
  const project = config.gcp.projectId;
  const location = config.gcp.location;
  const raiseAlert =
    deps.raiseAlert ??
    createAlertActivities({ logger, webhookUrls: config.alerts.webhookUrls, uiBaseUrl: config.temporal.uiUrl }).raiseAlert;

  /** Numbers are bound as STRING and CAST in SQL: the emulator cannot read numeric parameter values. */
  async function query(sql: string, params: Record<string, Param> = {}): Promise<Record<string, unknown>[]> {
    const types: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(params)) types[k] = v instanceof Date ? 'TIMESTAMP' : Array.isArray(v) ? ['STRING'] : 'STRING';
    const hasParams = Object.keys(params).length > 0;
    const [job] = await bigquery.createQueryJob({ query: sql, location, ...(hasParams ? { params, types } : {}) });
    const [rows] = await whileHeartbeating(() => job.getQueryResults(), 'query');
    return rows as Record<string, unknown>[];
  }

  async function ensureTable(name: string, schema: TableField[]): Promise<void> {
    const dataset = bigquery.dataset(marts, { location });
    const [dsExists] = await dataset.exists();
    if (!dsExists) {
      try {
        await dataset.create();
      } catch (err) {
        if ((err as { code?: number }).code !== 409) throw err;
      }
    }
    const t = dataset.table(name);
    const [exists] = await t.exists();
    if (exists) return;
    try {
      await t.create({ schema: { fields: schema } });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
  }

  async function requireStep<T>(version: string, step: string, schema: z.ZodType<T>, producer: string): Promise<T> {
    const value = await readStep(storage, bucket, version, step, schema);
    if (value === null) {
      throw ApplicationFailure.retryable(
        `gs://${bucket}/${runObjectName(version, step)} is missing; run task ${producer} of this interval first`,
        'MissingRunState',
      );
    }
    return value;
  }

  return {
    bigquery,
    storage,
    config,
    bucket,
    marts,
    settings: config.segmentation,
    raiseAlert,
    query,
    ensureTable,
    // Checked at use, not only when the configuration was loaded: tests and tools build Config objects too.
    table: (name: string) => qualifiedTable(project, marts, name),
    taskLog: (input: DagTaskInput, version: string): Logger =>
      logger.child({ dag: input.dagId, task: input.taskId, modelVersion: version }),
    versionOf: (input: DagTaskInput): string => modelVersionFor(input.interval.end),
    readStep: <T>(version: string, step: string, schema: z.ZodType<T>) => readStep(storage, bucket, version, step, schema),
    writeStep: (version: string, step: string, value: unknown) => writeStep(storage, bucket, version, step, value),
    requireStep,
    async candidateModel(version: string): Promise<SegmentModel> {
      return parseSegmentModel(await requireStep(version, 'model', z.unknown(), 'label'));
    },
    /** Validated with the rest of the configuration when it was loaded. */
    features(): FeatureSpec[] {
      return config.segmentation.features;
    },
  };
}

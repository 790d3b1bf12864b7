/**
 * The segments API's source on the model registry: artifacts and current.json in GCS,
 * marts.segment_models and marts.customer_segments in BigQuery.
 */
import type { BigQuery } from '@google-cloud/bigquery';
import type { Storage } from '@google-cloud/storage';
import type { Config } from '../core/config.js';
import type { SegmentModel } from '../core/segmentation/index.js';
import { listRegisteredModels, loadCurrentPointer, loadModelVersion, readSegmentSizes } from '../stores/model-registry.js';
import type { SegmentsSource } from './segments.js';

/** Artifacts never change once written, so a few are kept in memory; current.json is read on every request. */
const CACHED_ARTIFACTS = 16;

export function createRegistrySegmentsSource(deps: {
  bigquery: BigQuery;
  storage: Storage;
  config: Pick<Config, 'gcp' | 'warehouse' | 'lake'>;
}): SegmentsSource {
  const bucket = deps.config.lake.bucket;
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
  };
}

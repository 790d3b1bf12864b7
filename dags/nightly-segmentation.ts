/**
 * nightly_segmentation: retrain the customer segments from marts.customer_features.
 *
 *   extract -> choose_k -> train -> label -> register -> assign_all -> stability -> promote
 *
 * Tasks hand nothing to each other directly: each reads and writes durable state keyed by the
 * model version, which is derived from the run's data interval (end `2026-11-26T02:00:00Z` ->
 * `v20261126T020000Z`). Intermediate results live in GCS under
 * `models/segmentation/runs/<version>/`, so any task can be retried or rerun on its own.
 */
import { productionTaskDefaults } from './defaults.js';
import { defineDag } from './dsl.js';
import { NIGHTLY_SEGMENTATION_DAG } from '../core/dag-ids.js';

/** Activity names (activities/segmentation/). */
export const SEGMENTATION_ACTIVITY = {
  extract: 'segmentationExtract',
  chooseK: 'segmentationChooseK',
  train: 'segmentationTrain',
  label: 'segmentationLabel',
  register: 'segmentationRegister',
  assignAll: 'segmentationAssignAll',
  stability: 'segmentationStability',
  promote: 'segmentationPromote',
} as const;

/** Failures another attempt cannot fix: no data, no valid k, a bad feature spec, a corrupt artifact. */
export const SEGMENTATION_NON_RETRYABLE = [
  'NoCustomerFeatures',
  'KSelectionFailed',
  'InvalidSegmentationSettings',
  'InvalidSegmentModel',
] as const;

export const nightlySegmentation = defineDag({
  id: NIGHTLY_SEGMENTATION_DAG,
  description:
    'Retrain customer segments: sample features, choose k, train k-means, label, register the model, assign every customer in BigQuery, measure stability against the current model, promote by policy.',
  // After the night's hourly runs; the interval is the previous day.
  schedule: { cron: '0 2 * * *' },
  interval: 'daily',
  defaultTaskOptions: productionTaskDefaults(SEGMENTATION_NON_RETRYABLE),
  maxParallelism: 1,
  // Segments are to be fresh when the working day starts; UTC, as the schedule in this definition.
  deadline: { at: '05:00' },
  // Starts as soon as the day's 24 hourly feature partitions have landed; the 02:00 schedule stays as
  // the fallback for a day whose hours never all succeed (whichever comes first runs the day, once).
  triggeredBy: { assets: ['marts.customer_features'], schedule: 'beside' },
  tasks: [
    { id: 'extract', run: { activity: SEGMENTATION_ACTIVITY.extract }, heartbeatTimeout: '2m' },
    // CPU-bound in one synchronous call; no heartbeat, a generous timeout instead.
    { id: 'choose_k', run: { activity: SEGMENTATION_ACTIVITY.chooseK }, upstream: ['extract'], startToCloseTimeout: '1h' },
    { id: 'train', run: { activity: SEGMENTATION_ACTIVITY.train }, upstream: ['choose_k'], startToCloseTimeout: '1h' },
    { id: 'label', run: { activity: SEGMENTATION_ACTIVITY.label }, upstream: ['train'], startToCloseTimeout: '5m' },
    { id: 'register', run: { activity: SEGMENTATION_ACTIVITY.register }, upstream: ['label'], startToCloseTimeout: '5m' },
    {
      id: 'assign_all',
      run: { activity: SEGMENTATION_ACTIVITY.assignAll },
      upstream: ['register'],
      heartbeatTimeout: '2m',
      startToCloseTimeout: '2h',
    },
    { id: 'stability', run: { activity: SEGMENTATION_ACTIVITY.stability }, upstream: ['assign_all'], startToCloseTimeout: '15m' },
    { id: 'promote', run: { activity: SEGMENTATION_ACTIVITY.promote }, upstream: ['stability'], startToCloseTimeout: '5m' },
    // Online profiles follow the current model (the new one, or the old one when held).
    // It heartbeats on every page read and every profile written: 30 s of silence is a stuck store
    // call (seen with the Firestore emulator under a burst of real-time transactions), retried soon.
    {
      id: 'sync_profiles',
      run: { activity: 'syncProfiles' },
      upstream: ['promote'],
      heartbeatTimeout: '30s',
      startToCloseTimeout: '2h',
      retry: { initialInterval: '5s' },
    },
  ],
});

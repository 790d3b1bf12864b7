import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignAll } from '../../../core/segmentation/assign.js';
import { JOB_DEFAULTS, defaultRestartRows, defaultSampleSize, runSegmentationJob } from '../../../core/segmentation/job.js';
import { adjustedRandIndex } from '../../../core/segmentation/stability.js';
import { TRAIN_DEFAULTS } from '../../../core/segmentation/train.js';
import { blobs } from './fixtures.js';

test('the sample is 5% of the rows within its bounds, and the restarts run on a tenth of it within theirs', () => {
  assert.equal(defaultSampleSize(1_000), 1_000, 'never more than the rows there are');
  assert.equal(defaultSampleSize(40_000), JOB_DEFAULTS.minSample);
  assert.equal(defaultSampleSize(300_000), 15_000);
  assert.equal(defaultSampleSize(5_000_000), JOB_DEFAULTS.maxSample);
  assert.equal(defaultRestartRows(600), JOB_DEFAULTS.minRestartRows);
  assert.equal(defaultRestartRows(15_000), 1_500);
  assert.equal(defaultRestartRows(50_000), TRAIN_DEFAULTS.restartRows);
});

test('the job restarts on a subsample of its sample, ranks restarts on the sample and assigns every row', () => {
  const centres = [
    [0.1, 0.1, 0.2],
    [0.9, 0.2, 0.1],
    [0.5, 0.9, 0.5],
    [0.2, 0.6, 0.9],
    [0.8, 0.8, 0.8],
  ];
  const { matrix, nRows, dim, truth } = blobs(centres, 4_000, 0.05, 17);
  const job = runSegmentationJob(matrix, nRows, dim, { k: 5, seed: 5 });
  assert.equal(job.sampleSize, defaultSampleSize(nRows));
  assert.equal(job.restartRows, defaultRestartRows(job.sampleSize));
  assert.equal(job.restartInertias.length, JOB_DEFAULTS.nInit);
  // Each restart's inertia is over the whole sample, so none is below the trained one (which only improved on it).
  for (const inertia of job.restartInertias) assert.ok(inertia >= job.trainInertia * (1 - 1e-12), `${inertia} < ${job.trainInertia}`);
  const check = assignAll(matrix, nRows, dim, job.centroids);
  assert.deepEqual(job.labels, check.labels);
  assert.equal(job.inertia, check.inertia);
  assert.ok(adjustedRandIndex(truth, job.labels) >= 0.99);
  assert.throws(() => runSegmentationJob(matrix, nRows, dim, { k: 5, seed: 5, restartRows: 3 }), /restartRows/);
});

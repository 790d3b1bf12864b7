import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { SmokeResult } from '../../workflows/smoke.js';
import { startHarness, type IntegrationHarness } from '../support/stack.js';

let h: IntegrationHarness;
before(async () => {
  h = await startHarness('smoke');
});
after(async () => {
  await h?.close();
});

test('smoke workflow round-trips through Pub/Sub, GCS, BigQuery and Firestore on the real stack', async () => {
  const runId = randomUUID().slice(0, 8);
  const workflowId = `smoke/${runId}`;
  const handle = await h.client.workflow.start('smokeWorkflow', {
    taskQueue: h.config.temporal.taskQueue,
    workflowId,
    args: [runId],
  });
  const result = (await handle.result()) as SmokeResult;

  assert.equal(result.pubsub.data, `hello from ${runId}`);
  assert.equal(result.pubsub.attributes.run_id, runId);

  assert.equal(result.gcs.uri, `gs://${h.config.lake.bucket}/smoke/${runId}.ndjson`);
  assert.deepEqual(
    result.gcs.rows.map((r) => r.n),
    [1, 2, 3],
  );

  assert.deepEqual(result.bigquery.rows, [
    { run_id: runId, n: 1, label: 'one' },
    { run_id: runId, n: 2, label: 'two' },
    { run_id: runId, n: 3, label: 'three' },
  ]);

  assert.equal(result.firestore.path, `segflow_smoke/${runId}`);
  assert.equal(result.firestore.data.run_id, runId);
  assert.equal(result.firestore.data.ok, true);

  // Operators find the run in the UI by its search attributes.
  const described = await handle.describe();
  assert.deepEqual(described.searchAttributes.DagId, ['smoke']);
  assert.equal(described.status.name, 'COMPLETED');
});

test('the Temporal Web UI answers on its port', async () => {
  const res = await fetch(h.config.temporal.uiUrl);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /<html/i);
});

import { proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SmokeActivities, SmokeRow } from '../activities/smoke.js';

const { smokePubSub, smokeGcs, smokeBigQuery, smokeFirestore } = proxyActivities<SmokeActivities>({
  startToCloseTimeout: '60 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 3 },
});

export interface SmokeResult {
  pubsub: Awaited<ReturnType<SmokeActivities['smokePubSub']>>;
  gcs: Awaited<ReturnType<SmokeActivities['smokeGcs']>>;
  bigquery: Awaited<ReturnType<SmokeActivities['smokeBigQuery']>>;
  firestore: Awaited<ReturnType<SmokeActivities['smokeFirestore']>>;
}

/** One round trip through Pub/Sub, GCS, BigQuery (load from gs://) and Firestore. */
export async function smokeWorkflow(runId: string): Promise<SmokeResult> {
  upsertSearchAttributes({ DagId: ['smoke'], LogicalDate: [new Date(workflowInfo().startTime).toISOString()] });
  const rows: SmokeRow[] = [
    { run_id: runId, n: 1, label: 'one' },
    { run_id: runId, n: 2, label: 'two' },
    { run_id: runId, n: 3, label: 'three' },
  ];
  const [pubsub, gcs, firestore] = await Promise.all([smokePubSub(runId), smokeGcs(runId, rows), smokeFirestore(runId)]);
  const bigquery = await smokeBigQuery(runId, gcs.uri);
  return { pubsub, gcs, bigquery, firestore };
}

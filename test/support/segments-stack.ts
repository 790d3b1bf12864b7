/**
 * A trained and promoted segmentation model on the real local stack, for the segments API and
 * explorer tests: demo-persona customers loaded as marts.customer_features of a dataset and bucket
 * (and profile collection) of the test's own, then the nightly_segmentation DAG run once per night through Temporal.
 */
import { randomUUID } from 'node:crypto';
import { NIGHTLY_SEGMENTATION_DAG } from '../../core/dag-ids.js';
import { modelVersionFor } from '../../core/segmentation/model.js';
import { formatInstant } from '../../core/time.js';
import { createGcpClients, type GcpClients } from '../../stores/clients.js';
import { dagRunWorkflowId } from '../../workflows/dag-messages.js';
import { dropFeatureTarget, loadFeatureTable, personaPopulation, type PersonaPopulation } from './segmentation-fixtures.js';
import { startHarness, type IntegrationHarness } from './stack.js';

export interface SegmentedStack {
  harness: IntegrationHarness;
  clients: GcpClients;
  dataset: string;
  bucket: string;
  /** The environment a process of its own (API, ops CLI) needs to serve this stack's dataset, bucket and profiles. */
  env: Record<string, string>;
  population: PersonaPopulation;
  /** Model versions of the nights run, oldest first; the last one is current. */
  versions: string[];
  close(): Promise<void>;
}

export async function startSegmentedStack(
  name: string,
  opts: { customers: number; nights: number; env?: Record<string, string> },
): Promise<SegmentedStack> {
  const id = randomUUID().slice(0, 8);
  const dataset = `marts_${name.replace(/[^a-z0-9]/g, '_')}_${id}`;
  const bucket = `segflow-test-${name.replace(/[^a-z0-9]/g, '-')}-${id}`;
  const env = {
    SEGFLOW_DATASET_MARTS: dataset,
    SEGFLOW_LAKE_BUCKET: bucket,
    // Profiles of its own too: other tests sync customers of the same ids into the default collection.
    SEGFLOW_FIRESTORE_PROFILES: `profiles_${name.replace(/[^a-z0-9]/g, '_')}_${id}`,
  };
  const harness = await startHarness(name, { env: { ...env, SEGFLOW_SEGMENT_K_MAX: '8', ...opts.env } });
  const clients = createGcpClients(harness.config);
  const close = async () => {
    await harness.close();
    await dropFeatureTarget(clients, { dataset, bucket });
  };
  try {
    const population = personaPopulation(opts.customers, 2026, { asOf: new Date('2026-11-25T00:00:00Z'), eventsPerCustomer: 200 });
    await loadFeatureTable(clients, { dataset, bucket }, population.rows);
    const versions: string[] = [];
    for (let night = 1; night <= opts.nights; night++) {
      const interval = { start: formatInstant(Date.UTC(2026, 10, 24 + night)), end: formatInstant(Date.UTC(2026, 10, 25 + night)) };
      await harness.client.workflow.execute('runDag', {
        taskQueue: harness.config.temporal.taskQueue,
        workflowId: `${dagRunWorkflowId(NIGHTLY_SEGMENTATION_DAG, interval.start)}-${id}`,
        args: [{ dagId: NIGHTLY_SEGMENTATION_DAG, interval }],
      });
      versions.push(modelVersionFor(interval.end));
    }
    return { harness, clients, dataset, bucket, env, population, versions, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Customers per segment of `version`, counted directly in marts.customer_segments. */
export async function countSegments(stack: SegmentedStack, version: string): Promise<Map<number, number>> {
  const [rows] = await stack.clients.bigquery.query({
    query: `SELECT segment_id, COUNT(*) AS n FROM \`${stack.harness.config.gcp.projectId}.${stack.dataset}.customer_segments\` WHERE model_version = @v GROUP BY segment_id`,
    params: { v: version },
    types: { v: 'STRING' },
  });
  return new Map((rows as { segment_id: number; n: number }[]).map((r) => [Number(r.segment_id), Number(r.n)]));
}

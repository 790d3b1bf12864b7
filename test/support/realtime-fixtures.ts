/**
 * A small hand-built segmentation model and helpers shared by the real-time
 * integration test and bench:realtime: write the model and current.json to a
 * bucket, publish events the way producers do.
 */
import type { PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivityRuntime } from '../../activities/index.js';
import { closeGcpClients, createGcpClients, type GcpClients } from '../../stores/clients.js';
import type { Config } from '../../core/config.js';
import { createLogger, type Logger } from '../../core/logger.js';
import { temporalConnectionSettings } from '../../core/temporal-connection.js';
import { createTemporalClient } from '../../workers/client.js';
import { WORKFLOWS_PATH, workflowBundlerOptions } from '../../workers/worker.js';
import { testConfig } from './stack.js';
import { CURRENT_MODEL_OBJECT } from '../../stores/model-registry.js';
import { encodeEvent, type EventInput } from '../../core/events.js';
import { buildHierarchy } from '../../core/segmentation/hierarchy.js';
import { parseSegmentModel, type SegmentModel } from '../../core/segmentation/model.js';

export const OCCASIONAL = { id: 0, label: 'Occasional' } as const;
export const VIP = { id: 1, label: 'VIP' } as const;

/**
 * Two segments on frequency and (log) monetary: Occasional near 1 order and
 * 30 spent, VIP near 10 orders and 2000 spent. A 1500 purchase moves an
 * Occasional customer to VIP.
 */
export function twoSegmentModel(version: string): SegmentModel {
  const monetaryMax = Math.log(1 + 5000);
  return parseSegmentModel({
    version,
    created_at: '2026-11-26T00:00:00Z',
    features: [
      { name: 'frequency', weight: 1, role: 'frequency' },
      { name: 'monetary', weight: 1, log: true, role: 'monetary' },
    ],
    preparation: {
      features: [
        { name: 'frequency', weight: 1, log: false, role: 'frequency', fill: 1, min: 0, max: 20, missing_share: 0 },
        { name: 'monetary', weight: 1, log: true, role: 'monetary', fill: 30, min: 0, max: monetaryMax, missing_share: 0 },
      ],
      training_rows: 100,
    },
    centroids: [
      [0.05, Math.log(31) / monetaryMax],
      [0.5, Math.log(2001) / monetaryMax],
    ],
    segments: [
      { ...OCCASIONAL, size: 80, share: 0.8, centroid: { frequency: 1, monetary: 30 }, traits: ['monetary low'] },
      { ...VIP, size: 20, share: 0.2, centroid: { frequency: 10, monetary: 2000 }, traits: ['monetary high'] },
    ],
    k_selection: { chosen_k: 2, elbow_k: null, chosen_by: 'fixed', candidates: [{ k: 2, inertia: 1, silhouette: 0.7, min_share: 0.2 }] },
    metrics: { inertia: 1, silhouette: 0.7 },
    training: { sample_size: 100, seed: 1, n_init: 1, iterations: 3, converged: true },
  });
}

/** twoSegmentModel with nested segments: `parents` parent groups (1: one over both segments, 2: one each). */
export function nestedTwoSegmentModel(version: string, parents: 1 | 2): SegmentModel {
  const model = twoSegmentModel(version);
  return parseSegmentModel({ ...model, hierarchy: buildHierarchy(model, { min: parents, max: parents }) });
}

/** Writes the artifact and points current.json at it (creating the bucket if needed). */
export async function installCurrentModel(storage: Storage, bucketName: string, model: SegmentModel): Promise<void> {
  const bucket = storage.bucket(bucketName);
  const [exists] = await bucket.exists();
  if (!exists) await storage.createBucket(bucketName);
  const object = `models/segmentation/${model.version}.json`;
  await bucket.file(object).save(JSON.stringify(model), { resumable: false, contentType: 'application/json' });
  await bucket.file(CURRENT_MODEL_OBJECT).save(JSON.stringify({ version: model.version, uri: `gs://${bucketName}/${object}` }), {
    resumable: false,
    contentType: 'application/json',
  });
}

export function purchaseEvent(customerId: string, amount: number, ts = new Date()): EventInput {
  return {
    event_id: randomUUID(),
    customer_id: customerId,
    type: 'purchase',
    ts: ts.toISOString(),
    properties: { order_id: `o-${randomUUID().slice(0, 8)}`, amount, currency: 'USD' },
  };
}

/** Publishes like a producer: JSON body, `type`, `event_id` and `schema` attributes. */
export async function publishEvent(pubsub: PubSub, topic: string, event: EventInput): Promise<string> {
  const { data, attributes } = encodeEvent(event);
  return pubsub.topic(topic).publishMessage({ data, attributes: { ...attributes } });
}

export interface RealtimeHarness {
  config: Config;
  logger: Logger;
  client: Client;
  worker: { clients: GcpClients };
  close(): Promise<void>;
}

/**
 * The real workflows bundle and the real activities on a task queue of the caller's own.
 * Unlike test/support/stack.ts it ends the per-customer workflows still waiting out their
 * idle period when it closes, so no run is left on a task queue nobody polls, and it does
 * not depend on every DAG's activities being registered (startWorker's deployment check).
 */
export async function startRealtimeHarness(name: string, opts: { env: Record<string, string> }): Promise<RealtimeHarness> {
  const config = testConfig(name, opts.env);
  const logger = createLogger({ level: config.log.level, name: `test-${name}` });
  const clients = createGcpClients(config);
  const connection = await NativeConnection.connect(temporalConnectionSettings(config));
  const runtime = createActivityRuntime({ config, clients, logger });
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowsPath: WORKFLOWS_PATH,
    bundlerOptions: workflowBundlerOptions(),
    activities: runtime.activities,
  });
  const running = worker.run();
  // Native, as the trigger listener's is in `npm start` and `npm run triggers`.
  const client = await createTemporalClient(config, { native: true });
  return {
    config,
    logger,
    client,
    worker: { clients },
    async close() {
      // Per-customer workflows wait out their idle period; end them rather than leave them
      // running on a task queue that nobody will poll again.
      const query = `TaskQueue = '${config.temporal.taskQueue}' AND ExecutionStatus = 'Running'`;
      const ids: string[] = [];
      for await (const wf of client.workflow.list({ query })) ids.push(wf.workflowId);
      await Promise.allSettled(ids.map((wid) => client.workflow.getHandle(wid).terminate('test finished')));
      worker.shutdown();
      await running;
      await runtime.close();
      await connection.close();
      await client.connection.close();
      await closeGcpClients(clients);
    },
  };
}

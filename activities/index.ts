/**
 * Every activity the worker registers, built from injected dependencies so tests
 * can hand in emulator clients or small fakes.
 */
import type { Config } from '../core/config.js';
import type { Logger } from '../core/logger.js';
import type { GcpClients } from '../stores/clients.js';
import { alertDepsFromConfig, createAlertActivities } from './alerts.js';
import { createIngestActivities, type IngestHooks } from './ingest.js';
import { createProfileSyncActivities } from './profile-sync.js';
import { createQuarantineActivities } from './quarantine.js';
import { createProfileStore } from '../stores/profiles.js';
import { createReclassifyActivities } from './reclassify.js';
import { createSegmentationActivities } from './segmentation/index.js';
import { createSensorActivities } from './sensors.js';
import { createWarehouseActivities } from './warehouse.js';
import { createWebhookActivities } from './webhooks.js';
import { createSmokeActivities } from './smoke.js';
import { currentActivity } from './heartbeat.js';
import { createForgetActivities } from './forget.js';
import { createAssetActivities } from './assets.js';
import { createSuppressionList } from '../stores/suppression.js';

export interface ActivityDeps {
  config: Config;
  clients: GcpClients;
  logger: Logger;
  /** Failure points for tests (a crash between write and ack, for example). */
  hooks?: { ingest?: IngestHooks };
}

/** The activities and what must be closed when the worker stops. */
export function createActivityRuntime(deps: ActivityDeps) {
  const { config, clients, logger, hooks } = deps;
  // Forgotten customers: ingestion drops their events, the forget activities add to it.
  const suppression = createSuppressionList({ firestore: clients.firestore, config, logger });
  const webhooks = createWebhookActivities({ subscribers: config.webhooks, logger });
  const { closeIngestSubscribers, ...ingest } = createIngestActivities({
    pubsub: clients.pubsub,
    storage: clients.storage,
    config,
    logger,
    hooks: hooks?.ingest,
    suppression,
  });
  const profiles = createProfileStore({ firestore: clients.firestore, config, logger, activity: currentActivity });
  const activities = {
    ...createSmokeActivities({ clients, bucket: config.lake.bucket }),
    ...ingest,
    ...createAlertActivities(alertDepsFromConfig(config.alerts, logger, config.temporal.uiUrl)),
    ...profiles,
    ...createProfileSyncActivities({
      bigquery: clients.bigquery,
      storage: clients.storage,
      config,
      logger,
      writeProfilesBulk: profiles.writeProfilesBulk,
    }),
    ...createReclassifyActivities({
      storage: clients.storage,
      bigquery: clients.bigquery,
      firestore: clients.firestore,
      config,
      logger,
      modelPointerTtlMs: config.segmentation.modelPointerTtlMs,
    }),
    ...webhooks,
    ...createQuarantineActivities({
      storage: clients.storage,
      config,
      logger,
      suppressedCustomers: (ids) => suppression.suppressedNow(ids),
    }),
    ...createWarehouseActivities({ bigquery: clients.bigquery, storage: clients.storage, config, logger }),
    ...createSegmentationActivities({ bigquery: clients.bigquery, storage: clients.storage, config, logger }),
    ...createForgetActivities({ ...clients, config, logger, suppression, webhooks }),
    ...createAssetActivities(),
    ...createSensorActivities({ storage: clients.storage, bigquery: clients.bigquery, config, logger }),
  };
  return {
    activities,
    async close(): Promise<void> {
      await closeIngestSubscribers();
      suppression.close();
    },
  };
}

export function createActivities(deps: ActivityDeps) {
  return createActivityRuntime(deps).activities;
}

export type Activities = ReturnType<typeof createActivities>;

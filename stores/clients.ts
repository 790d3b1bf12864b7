/**
 * The official Google Cloud clients, built once from the configuration. Against
 * the local stack they get explicit emulator endpoints (never the
 * *_EMULATOR_HOST variables for GCS and BigQuery: those make the clients build
 * wrong URLs); in production they use Application Default Credentials.
 */
import { BigQuery } from '@google-cloud/bigquery';
import { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import type { Config } from '../core/config.js';

export interface GcpClients {
  pubsub: PubSub;
  storage: Storage;
  bigquery: BigQuery;
  firestore: Firestore;
}

export function createGcpClients(config: Config): GcpClients {
  const { projectId, pubsubEmulatorHost, firestoreEmulatorHost, gcsEndpoint, bigqueryEndpoint, location } = config.gcp;
  if (pubsubEmulatorHost && firestoreEmulatorHost && gcsEndpoint && bigqueryEndpoint) {
    // Nothing here runs on GCE: stop google-auth-library probing the metadata server
    // (it only prints warnings against emulators).
    process.env.METADATA_SERVER_DETECTION ??= 'none';
  }
  const pubsub = pubsubEmulatorHost
    ? new PubSub({ projectId, apiEndpoint: pubsubEmulatorHost, emulatorMode: true })
    : new PubSub({ projectId });
  const storage = createStorage(config);
  const bigquery = bigqueryEndpoint
    ? new BigQuery({ projectId, apiEndpoint: bigqueryEndpoint, location })
    : new BigQuery({ projectId, location });
  const firestore = firestoreEmulatorHost
    ? new Firestore({
        projectId,
        host: firestoreEmulatorHost,
        ssl: false,
        // The emulator accepts this fixed token as an administrator; no credentials exist locally.
        customHeaders: { Authorization: 'Bearer owner' },
        ignoreUndefinedProperties: true,
      })
    : new Firestore({ projectId, ignoreUndefinedProperties: true });
  return { pubsub, storage, bigquery, firestore };
}

export async function closeGcpClients(clients: GcpClients): Promise<void> {
  await Promise.allSettled([clients.pubsub.close(), clients.firestore.terminate()]);
}

/** The GCS client alone (the ops CLI reads the quarantine with it). */
export function createStorage(config: Config): Storage {
  const { projectId, gcsEndpoint } = config.gcp;
  return gcsEndpoint ? new Storage({ projectId, apiEndpoint: gcsEndpoint }) : new Storage({ projectId });
}

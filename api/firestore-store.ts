/**
 * The profile API's store on Firestore. Reads go through the profile activities'
 * readProfile and readProfiles (one getAll round trip for many customers), the one
 * place that knows the document layout.
 */
import type { Firestore } from '@google-cloud/firestore';
import { createProfileStore } from '../stores/profiles.js';
import type { Logger } from '../core/logger.js';
import type { ProfileStore } from './cache.js';

export interface FirestoreProfileStoreDeps {
  firestore: Firestore;
  config: { firestore: { profiles: string } };
  logger: Logger;
}

export function createFirestoreProfileStore({ firestore, config, logger }: FirestoreProfileStoreDeps): ProfileStore {
  const { readProfile, readProfiles } = createProfileStore({ firestore, config, logger });
  const collection = firestore.collection(config.firestore.profiles);
  return {
    getProfile: readProfile,
    getProfiles: readProfiles,
    // A keys-only query of at most one document: the cheapest round trip that proves reads work.
    async ping() {
      await collection.select().limit(1).get();
    },
  };
}

/**
 * The quarantine in the lake: listing and reading its objects per arrival hour, rewriting one with
 * the messages that are still invalid, and the ledger of recovered messages written by a replay
 * (`quarantine/recovered/v1/dt=.../hour=.../<hash>.ndjson.gz`, one line per message).
 */
import type { Storage } from '@google-cloud/storage';
import { batchHash, decodeNdjsonGz, encodeNdjsonGz, hourPrefix, hourStartOf, type QuarantineRecord } from '../core/lake.js';
import { MS_PER_UNIT } from '../core/time.js';

export const RECOVERED_PREFIX = 'quarantine/recovered/v1/';

export interface QuarantineObject {
  name: string;
  /** Start of the arrival hour the object belongs to (ISO). */
  hour: string;
}

/** One line of the recovery ledger: which quarantined message went where. */
export interface RecoveredRecord {
  message_id: string;
  event_id: string;
  customer_id: string;
  type: string;
  quarantine_object: string;
  raw_object: string;
  replay: string;
}

/** The arrival hours in [from, to): from rounded down to its hour. */
export function arrivalHours(from: Date, to: Date): Date[] {
  const hours: Date[] = [];
  for (let t = hourStartOf(from).getTime(); t < to.getTime(); t += MS_PER_UNIT.h) hours.push(new Date(t));
  return hours;
}

export function createQuarantineStore(deps: { storage: Storage; bucket: string }) {
  const bucket = deps.storage.bucket(deps.bucket);

  async function save(name: string, records: readonly object[]): Promise<void> {
    await bucket.file(name).save(encodeNdjsonGz(records), {
      resumable: false,
      contentType: 'application/x-ndjson',
      metadata: { contentEncoding: 'gzip' },
      gzip: false,
    });
  }

  // A lake bucket not created yet holds nothing.
  const filesUnder = async (prefix: string) => {
    try {
      return (await bucket.getFiles({ prefix, autoPaginate: true }))[0];
    } catch (err) {
      if ((err as { code?: number }).code === 404) return [];
      throw err;
    }
  };

  return {
    /** The quarantine objects of the arrival hours in [from, to), hours ascending, names sorted. */
    async listObjects(from: Date, to: Date): Promise<QuarantineObject[]> {
      const out: QuarantineObject[] = [];
      for (const hour of arrivalHours(from, to)) {
        const files = await filesUnder(hourPrefix(hour, 'quarantine'));
        const names = files.map((f) => f.name).filter((n) => n.endsWith('.ndjson.gz'));
        for (const name of names.sort()) out.push({ name, hour: hour.toISOString() });
      }
      return out;
    },

    async readObject(name: string): Promise<QuarantineRecord[]> {
      const [data] = await bucket.file(name).download({ decompress: false });
      return decodeNdjsonGz(data) as QuarantineRecord[];
    },

    /** Replaces an object's content with the messages still quarantined; none left: the object goes. */
    async rewriteObject(name: string, records: readonly QuarantineRecord[]): Promise<void> {
      if (records.length === 0) await bucket.file(name).delete({ ignoreNotFound: true });
      else await save(name, records);
    },

    /** Ledger object of one set of recovered messages, named after their message ids (a retry rewrites it). */
    async writeRecovered(hour: Date, records: readonly RecoveredRecord[]): Promise<string> {
      const start = hourStartOf(hour).toISOString();
      const name = `${RECOVERED_PREFIX}dt=${start.slice(0, 10)}/hour=${start.slice(11, 13)}/${batchHash(records.map((r) => r.message_id))}.ndjson.gz`;
      await save(name, records);
      return name;
    },

    /** Recovered messages of the arrival hours in [from, to). */
    async readRecovered(from: Date, to: Date): Promise<RecoveredRecord[]> {
      const out: RecoveredRecord[] = [];
      for (const hour of arrivalHours(from, to)) {
        const start = hour.toISOString();
        const files = await filesUnder(`${RECOVERED_PREFIX}dt=${start.slice(0, 10)}/hour=${start.slice(11, 13)}/`);
        for (const f of files) {
          const [data] = await f.download({ decompress: false });
          out.push(...(decodeNdjsonGz(data) as RecoveredRecord[]));
        }
      }
      return out;
    },

    /** Writes records to a raw lake object (a recovered message's object under its original arrival hour). */
    saveRaw: save,
  };
}

export type QuarantineStore = ReturnType<typeof createQuarantineStore>;

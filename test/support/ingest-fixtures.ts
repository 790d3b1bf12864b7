/**
 * Workloads for ingestion tests: valid persona events over a time range, every
 * kind of malformed message, and duplicate publishes of valid events.
 */
import type { Storage } from '@google-cloud/storage';
import { REASON_CODES, type ReasonCode } from '../../core/events.js';
import { decodeNdjsonGz, type LakeRecord, type QuarantineRecord } from '../../core/lake.js';
import { generateEvents, makeMalformed, makePopulation } from '../../demo/personas.js';
import { createRng } from '../../core/random.js';
import { eventMessage, type OutgoingMessage } from '../../scripts/lib/publisher.js';

export interface Workload {
  messages: OutgoingMessage[];
  validIds: Set<string>;
  malformed: Array<{ kind: ReasonCode; index: number }>;
  duplicates: number;
}

export function buildWorkload(opts: {
  events: number;
  malformedShare: number;
  duplicateShare: number;
  days: number;
  seed: number;
  maxBytes: number;
  now?: Date;
}): Workload {
  const now = opts.now ?? new Date();
  const perCustomer = 30;
  const population = makePopulation(Math.ceil((opts.events / perCustomer) * 1.3), opts.seed, { idPrefix: `c${opts.seed}` });
  const events = [];
  for (const e of generateEvents(population, { from: new Date(now.getTime() - opts.days * 86_400_000), to: now, seed: opts.seed })) {
    events.push(e);
    if (events.length === opts.events) break;
  }
  if (events.length < opts.events) throw new Error(`generated only ${events.length} of ${opts.events} events`);
  const rng = createRng(opts.seed);
  const valid = events.map(eventMessage);
  const nDup = Math.round(opts.events * opts.duplicateShare);
  const dups = Array.from({ length: nDup }, () => valid[rng.int(0, valid.length - 1)]!);
  const nBad = Math.round(opts.events * opts.malformedShare);
  const kinds = REASON_CODES;
  const malformed = Array.from({ length: nBad }, (_, i) => ({ kind: kinds[i % kinds.length]!, index: i }));
  const bad = malformed.map(({ kind, index }) => {
    const m = makeMalformed(kind, opts.seed * 100_000 + index, { maxBytes: opts.maxBytes, maxFutureSkewMs: 300_000, now });
    return { data: m.data, attributes: { ...m.attributes, test_malformed_kind: kind, test_index: String(index) } };
  });
  // Interleave so malformed and duplicate messages land in ordinary batches.
  const messages = [...valid, ...dups, ...bad];
  for (let i = messages.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [messages[i], messages[j]] = [messages[j]!, messages[i]!];
  }
  return { messages, validIds: new Set(events.map((e) => e.event_id.toLowerCase())), malformed, duplicates: nDup };
}

export interface LakeContents {
  raw: LakeRecord[];
  quarantine: QuarantineRecord[];
  rawObjects: number;
}

export async function readLake(storage: Storage, bucket: string): Promise<LakeContents> {
  const b = storage.bucket(bucket);
  const read = async (prefix: string) => {
    const [files] = await b.getFiles({ prefix });
    const out: unknown[] = [];
    for (const f of files) {
      const [buf] = await f.download({ decompress: false });
      out.push(...decodeNdjsonGz(buf));
    }
    return { records: out, objects: files.length };
  };
  const raw = await read('raw/events/v1/');
  const quarantine = await read('quarantine/events/v1/');
  return { raw: raw.records as LakeRecord[], quarantine: quarantine.records as QuarantineRecord[], rawObjects: raw.objects };
}

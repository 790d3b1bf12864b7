/**
 * Online profiles in Firestore (`<SEGFLOW_FIRESTORE_PROFILES>/{customerId}`):
 * single conditional writes for the real-time path (updateProfile), bulk writes for profile
 * syncs, and reads. A newer profile is never replaced by an older one
 * (compareProfileRecency decides which is newer).
 */
import firestorePackage, {
  type BulkWriterOptions,
  type DocumentData,
  type DocumentReference,
  type DocumentSnapshot,
  type Firestore,
  type Timestamp,
} from '@google-cloud/firestore';
import { ApplicationFailure } from '@temporalio/common';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import { describeInvalidCustomerId, isCustomerId, CUSTOMER_ID_RULE } from '../core/customer-id.js';
import type { Logger } from '../core/logger.js';
import {
  compareProfileRecency,
  normalizeProfile,
  ProfileSchema,
  profileProblems,
  sameProfileContent,
  segmentChangedFrom,
  segmentOf,
  type Profile,
  type SegmentRef,
} from '../core/profile.js';

// A CommonJS package whose enum Node's ESM loader cannot see as a named export.
const { FieldPath, FieldValue, GrpcStatus } = firestorePackage;

export interface ProfileBulkOptions {
  /** Documents read per getAll round trip. */
  readChunkSize?: number;
  /** Log (and heartbeat) progress at least every this many profiles. */
  progressEvery?: number;
  /** Writes queued in the BulkWriter before waiting for them to finish (bounds memory). */
  maxPendingWrites?: number;
  /** Writes that lost a race go through the transactional path with this much parallelism. */
  conflictConcurrency?: number;
  throttling?: BulkWriterOptions['throttling'];
}

export interface ProfileStoreDeps {
  firestore: Firestore;
  config: { firestore: { profiles: string } };
  logger: Logger;
  bulk?: ProfileBulkOptions;
  /**
   * The Temporal activity the store is working for, if any (activities pass `currentActivity`): bulk
   * writes heartbeat their progress to it and stop when it is cancelled.
   */
  activity?: () => ActivityScope | undefined;
}

/** What the store needs of an activity's context. */
export interface ActivityScope {
  heartbeat(details: unknown): void;
  readonly cancellationSignal: AbortSignal;
}

export interface WriteProfileResult {
  written: boolean;
  /** created / updated, or not_newer when the stored profile is as new or newer (it is kept). */
  outcome: 'created' | 'updated' | 'not_newer';
  /** The stored segment before this write; null when the customer had no (readable) profile. */
  previousSegment: SegmentRef | null;
  previousModelVersion: string | null;
  /** True when this write moved the customer into another segment or parent segment (or gave a first one): send webhooks. */
  segmentChanged: boolean;
}

export interface BulkWriteSummary {
  received: number;
  /** Failed validation: counted, logged with reasons (first few in invalidSamples), not written. */
  invalid: number;
  created: number;
  updated: number;
  /** Stored profile says the same thing: no write. */
  unchanged: number;
  /** Stored profile is as new or newer: kept. */
  notNewer: number;
  /** Written (created or updated) with a different segment or parent segment than before. */
  segmentChanged: number;
  /** Documents that changed between our read and our write, re-done transactionally. */
  conflicts: number;
  failed: number;
  durationMs: number;
  invalidSamples: string[];
}

const BULK_DEFAULTS = { readChunkSize: 300, progressEvery: 5_000, maxPendingWrites: 2_000, conflictConcurrency: 8 } as const;
const MAX_WRITE_ATTEMPTS = 10;
/** A write refused because the document is no longer the version it was decided on (or exists after all). */
const CONFLICT_CODES: ReadonlySet<number> = new Set([GrpcStatus.FAILED_PRECONDITION, GrpcStatus.ALREADY_EXISTS]);
const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  GrpcStatus.UNAVAILABLE,
  GrpcStatus.ABORTED,
  GrpcStatus.RESOURCE_EXHAUSTED,
  GrpcStatus.DEADLINE_EXCEEDED,
  GrpcStatus.INTERNAL,
]);

/** What must be readable in a stored document to order writes and report the previous segment. */
const StoredHeaderSchema = z.looseObject({
  updated_at: ProfileSchema.shape.updated_at,
  source_event_time: ProfileSchema.shape.source_event_time,
  segment_id: ProfileSchema.shape.segment_id.optional(),
  segment_label: ProfileSchema.shape.segment_label.optional(),
  parent_segment: ProfileSchema.shape.parent_segment,
  model_version: ProfileSchema.shape.model_version.optional(),
});
type StoredHeader = z.infer<typeof StoredHeaderSchema>;

function storedSegment(h: StoredHeader | null): SegmentRef | null {
  return h?.segment_id !== undefined && h.segment_label !== undefined
    ? { id: h.segment_id, label: h.segment_label, parent: h.parent_segment ?? null }
    : null;
}

/** Plain JSON for Firestore: normalised timestamps, no undefined values. */
function toDocument(profile: Profile): DocumentData {
  return JSON.parse(JSON.stringify(normalizeProfile(profile))) as DocumentData;
}

function invalidProfile(problems: string[]): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`invalid profile: ${problems.join('; ')}`, 'InvalidProfile', { problems });
}

function parseStoredHeader(log: Logger, customerId: string, data: DocumentData | undefined): StoredHeader | null {
  const header = StoredHeaderSchema.safeParse(data);
  if (header.success) return header.data;
  // An unreadable document cannot say it is newer; let the write repair it, loudly.
  log.warn({ customerId, problems: profileProblems(header.error) }, 'stored profile is unreadable; it will be overwritten');
  return null;
}

export function createProfileStore({ firestore, config, logger, bulk = {}, activity }: ProfileStoreDeps) {
  const heartbeat = (details: unknown) => activity?.()?.heartbeat(details);
  const collection = firestore.collection(config.firestore.profiles);
  const log = logger.child({ component: 'profiles', collection: config.firestore.profiles });
  const opts = { ...BULK_DEFAULTS, ...bulk };

  const parseStored = (customerId: string, data: DocumentData | undefined) => parseStoredHeader(log, customerId, data);

  async function writeProfile(input: Profile): Promise<WriteProfileResult> {
    const parsed = ProfileSchema.safeParse(input);
    if (!parsed.success) throw invalidProfile(profileProblems(parsed.error));
    const profile = parsed.data;
    const ref = collection.doc(profile.customer_id);
    const doc = toDocument(profile);

    // The read and the write are one transaction: a concurrent writer makes Firestore retry this function.
    const result = await firestore.runTransaction(async (tx): Promise<WriteProfileResult> => {
      const snap = await tx.get(ref);
      const stored = snap.exists ? parseStored(profile.customer_id, snap.data()) : null;
      const previousSegment = storedSegment(stored);
      const previousModelVersion = stored?.model_version ?? null;
      if (stored !== null && compareProfileRecency(profile, stored) <= 0) {
        return { written: false, outcome: 'not_newer', previousSegment, previousModelVersion, segmentChanged: false };
      }
      tx.set(ref, doc);
      const segmentChanged = segmentChangedFrom(previousSegment, segmentOf(profile));
      return { written: true, outcome: snap.exists ? 'updated' : 'created', previousSegment, previousModelVersion, segmentChanged };
    });
    log.debug({ customerId: profile.customer_id, ...result }, 'profile write');
    return result;
  }

  async function readProfile(customerId: string): Promise<Profile | null> {
    if (!isCustomerId(customerId)) {
      throw ApplicationFailure.nonRetryable(
        `customer id: expected ${CUSTOMER_ID_RULE}, found ${describeInvalidCustomerId(customerId)}`,
        'InvalidCustomerId',
      );
    }
    return storedProfile(customerId, await collection.doc(customerId).get());
  }

  function storedProfile(customerId: string, snap: DocumentSnapshot): Profile | null {
    if (!snap.exists) return null;
    const parsed = ProfileSchema.safeParse(snap.data());
    if (!parsed.success) {
      throw ApplicationFailure.nonRetryable(
        `stored profile ${config.firestore.profiles}/${customerId} does not match the profile schema: ${profileProblems(parsed.error).join('; ')}; ` +
          'rewrite it with writeProfile or a profile sync',
        'InvalidStoredProfile',
      );
    }
    return parsed.data;
  }

  /**
   * readProfile for many customers in one round trip (getAll). Answers in the order
   * asked: the profile, null when there is none, or the error readProfile would throw.
   */
  async function readProfiles(customerIds: readonly string[]): Promise<Array<{ profile: Profile | null } | { error: string }>> {
    const valid = customerIds.filter((id) => isCustomerId(id));
    const snaps = valid.length > 0 ? await firestore.getAll(...valid.map((id) => collection.doc(id))) : [];
    const found = new Map(snaps.map((snap) => [snap.id, snap]));
    return customerIds.map((id) => {
      const snap = found.get(id);
      if (snap === undefined) return { error: `customer id: expected ${CUSTOMER_ID_RULE}, found ${describeInvalidCustomerId(id)}` };
      try {
        return { profile: storedProfile(id, snap) };
      } catch (err) {
        return { error: err instanceof Error ? err.message : String(err) };
      }
    });
  }

  /**
   * Write many profiles, skipping customers whose stored profile is unchanged or newer.
   *
   * Reads a chunk with getAll, then writes through a BulkWriter with a
   * precondition (the document's update time as read, or "must not exist"),
   * so a real-time write that lands in between makes our write fail instead of
   * being overwritten; those few go through writeProfile's transaction.
   * Accepts an async iterable so a caller can stream rows from BigQuery.
   */
  async function writeProfilesBulk(profiles: Iterable<Profile> | AsyncIterable<Profile>): Promise<BulkWriteSummary> {
    const t0 = Date.now();
    const s: BulkWriteSummary = {
      received: 0,
      invalid: 0,
      created: 0,
      updated: 0,
      unchanged: 0,
      notNewer: 0,
      segmentChanged: 0,
      conflicts: 0,
      failed: 0,
      durationMs: 0,
      invalidSamples: [],
    };
    const cancelled = activity?.()?.cancellationSignal;
    const writer = firestore.bulkWriter(opts.throttling === undefined ? undefined : { throttling: opts.throttling });
    writer.onWriteError((err) => {
      if (CONFLICT_CODES.has(err.code)) return false;
      return RETRYABLE_CODES.has(err.code) && err.failedAttempts < MAX_WRITE_ATTEMPTS;
    });

    const conflicted: Profile[] = [];
    let pending: Promise<void>[] = [];
    let lastLogged = 0;

    const track = (write: Promise<unknown>, profile: Profile, onSuccess: () => void) => {
      pending.push(
        write.then(
          () => {
            onSuccess();
            // A slow store still makes progress; only a write that stops answering should time the activity out.
            heartbeat({ processed: s.received, written: s.created + s.updated });
          },
          (err: { code?: number; message?: string }) => {
            if (err.code !== undefined && CONFLICT_CODES.has(err.code)) {
              conflicted.push(profile);
            } else {
              s.failed += 1;
              log.error({ customerId: profile.customer_id, code: err.code, error: err.message }, 'profile write failed');
            }
          },
        ),
      );
    };

    const drain = async () => {
      await writer.flush();
      await Promise.all(pending);
      pending = [];
    };

    const progress = (final: boolean) => {
      const processed = s.received;
      if (!final && processed - lastLogged < opts.progressEvery) return;
      lastLogged = processed;
      const elapsed = (Date.now() - t0) / 1000;
      const { invalidSamples: _samples, ...counts } = s;
      log.info(
        { ...counts, durationMs: Date.now() - t0, perSecond: Math.round(processed / Math.max(elapsed, 0.001)) },
        final ? 'profile sync finished' : 'profile sync progress',
      );
    };

    const processChunk = async (chunk: Profile[]) => {
      // The newest version per customer; later duplicates across chunks meet the precondition path.
      const newest = new Map<string, Profile>();
      for (const p of chunk) {
        const seen = newest.get(p.customer_id);
        if (seen === undefined || compareProfileRecency(p, seen) > 0) newest.set(p.customer_id, p);
        else s.notNewer += 1;
      }
      const batch = [...newest.values()];
      const refs = batch.map((p) => collection.doc(p.customer_id));
      const snaps = refs.length > 0 ? await firestore.getAll(...refs) : [];
      batch.forEach((profile, i) => {
        const ref = refs[i]!;
        const snap = snaps[i]!;
        if (!snap.exists) {
          track(writer.create(ref, toDocument(profile)), profile, () => {
            s.created += 1;
            s.segmentChanged += 1;
          });
          return;
        }
        const full = ProfileSchema.safeParse(snap.data());
        if (full.success && sameProfileContent(profile, full.data)) {
          s.unchanged += 1;
          return;
        }
        const stored = full.success ? full.data : parseStored(profile.customer_id, snap.data());
        if (stored !== null && compareProfileRecency(profile, stored) <= 0) {
          s.notNewer += 1;
          return;
        }
        const before = storedSegment(stored);
        // update() replaces each top-level field it names (maps included); source_event_time
        // is removed when the new profile has none, so the stored document equals the profile.
        const data = { source_event_time: FieldValue.delete(), ...toDocument(profile) };
        track(writer.update(ref, data, { lastUpdateTime: snap.updateTime! }), profile, () => {
          s.updated += 1;
          if (segmentChangedFrom(before, segmentOf(profile))) s.segmentChanged += 1;
        });
      });
      if (pending.length >= opts.maxPendingWrites) await drain();
    };

    try {
      let chunk: Profile[] = [];
      for await (const input of profiles) {
        s.received += 1;
        const parsed = ProfileSchema.safeParse(input);
        if (!parsed.success) {
          s.invalid += 1;
          const id = (input as { customer_id?: unknown } | null)?.customer_id;
          const sample = `${isCustomerId(id) ? id : describeInvalidCustomerId(id)}: ${profileProblems(parsed.error).join('; ')}`;
          if (s.invalidSamples.length < 20) s.invalidSamples.push(sample);
          log.warn({ problem: sample }, 'invalid profile skipped');
          continue;
        }
        chunk.push(parsed.data);
        if (chunk.length >= opts.readChunkSize) {
          await processChunk(chunk);
          chunk = [];
          heartbeat({ processed: s.received });
          progress(false);
          if (cancelled?.aborted) throw cancelled.reason;
        }
      }
      if (chunk.length > 0) await processChunk(chunk);
      await drain();
    } finally {
      await writer.close();
    }

    // Profiles that changed under us: decide again inside a transaction.
    s.conflicts = conflicted.length;
    for (let i = 0; i < conflicted.length; i += opts.conflictConcurrency) {
      const results = await Promise.allSettled(conflicted.slice(i, i + opts.conflictConcurrency).map((p) => writeProfile(p)));
      for (const [j, r] of results.entries()) {
        if (r.status === 'rejected') {
          s.failed += 1;
          log.error({ customerId: conflicted[i + j]!.customer_id, error: String(r.reason) }, 'profile write failed after a conflict');
        } else if (!r.value.written) s.notNewer += 1;
        else {
          if (r.value.outcome === 'created') s.created += 1;
          else s.updated += 1;
          if (r.value.segmentChanged) s.segmentChanged += 1;
        }
      }
    }
    s.durationMs = Date.now() - t0;
    progress(true);
    if (s.failed > 0) {
      // Retrying is safe: profiles already written are then skipped as unchanged.
      throw ApplicationFailure.retryable(
        `${s.failed} of ${s.received} profile writes to ${config.firestore.profiles} failed (see the logs); the retry skips those already written`,
        'ProfileWriteFailed',
        s,
      );
    }
    return s;
  }

  return { writeProfile, writeProfilesBulk, readProfile, readProfiles };
}

/**
 * Bookkeeping the real-time path keeps in the profile document beside the profile (readers
 * parse with ProfileSchema, which drops it): its recent writes, each with the events it
 * applied, the segment it replaced and the workflow run that made it.
 */
const RecentWritesSchema = z.object({
  recent_writes: z.array(
    z.object({
      event_ids: z.array(z.string()),
      previous_segment: z
        .object({ id: z.number().int().min(0), label: z.string().min(1), parent: ProfileSchema.shape.parent_segment })
        .nullable(),
      writer: z.string(),
    }),
  ),
});
const RECENT_WRITES_KEPT = 20;
/** Updates that lose this many races in a row fail (retryably): the caller's retry policy takes over. */
const MAX_UPDATE_ATTEMPTS = 10;

export interface UpdateProfileOptions {
  /** The events `compute` applies. */
  eventIds: readonly string[];
  /** Who writes (the workflow run id): only its own earlier writes can be repeats of this step. */
  writer: string;
}

export interface ProfileUpdaterOptions {
  /** Customers whose last write this process remembers, so that their next update needs no read (a document is 1-2 kB). */
  rememberedWrites?: number;
}

/** A version of a profile document: its data (undefined: no document) and update time. */
interface DocumentVersion {
  data: DocumentData | undefined;
  updateTime: Timestamp | undefined;
}

export type UpdateProfileResult = WriteProfileResult & {
  profile: Profile;
  stored: Profile | null;
  alreadyApplied: boolean;
  /** When the write committed (the document's new update time); null when nothing was written. */
  committedAt: string | null;
};

/**
 * Read, compute and write one profile with no lost update: `compute` gets the stored
 * profile (null when missing or unreadable) and returns the new one, which is written
 * only if the document is still the version it was computed from (an update-time
 * precondition, or "must not exist"); if anything else wrote meanwhile, `compute` runs
 * again on what is stored then. The write is skipped when the stored profile is as new
 * or newer, as in writeProfile. Not an activity itself (it takes a function): the
 * real-time activity builds on it.
 *
 * The updater remembers the document it last wrote for each customer (up to
 * `rememberedWrites`), so the next update of that customer starts from it: one round
 * trip (the conditional write) instead of a read and a commit. A remembered copy that
 * is no longer current only costs a refused write and a read. A decision not to write
 * is never taken on a remembered copy alone: it is checked on a fresh read.
 */
export function createProfileUpdater(
  { firestore, config, logger }: Omit<ProfileStoreDeps, 'bulk'>,
  { rememberedWrites = 10_000 }: ProfileUpdaterOptions = {},
) {
  const collection = firestore.collection(config.firestore.profiles);
  const log = logger.child({ component: 'profiles', collection: config.firestore.profiles });
  const lastWritten = new LRUCache<string, DocumentVersion>({ max: rememberedWrites });

  /**
   * A step whose commit outlived its result (a worker killed before the workflow recorded it,
   * a connection reset after the commit) runs again, possibly with more events and after
   * later steps of the same run committed too. Its events already applied are not applied
   * again (`compute` gets their ids), and the change is reported from the segment before the
   * first of the run's writes it repeats, so no change the workflow never saw is lost. If
   * every event was applied, the repeated writes are reported (to the segment after the last
   * of them) and nothing is written.
   */
  function decide(
    customerId: string,
    data: DocumentData | undefined,
    compute: (stored: Profile | null, applied: ReadonlySet<string>) => Profile,
    options: UpdateProfileOptions | undefined,
  ): { result: Omit<UpdateProfileResult, 'committedAt'>; document?: DocumentData } {
    const eventIds = options?.eventIds ?? [];
    const full = data === undefined ? undefined : ProfileSchema.safeParse(data);
    const stored = full?.success ? full.data : null;
    const header = data === undefined ? null : full?.success ? full.data : parseStoredHeader(log, customerId, data);
    const writes = (stored === null ? undefined : RecentWritesSchema.safeParse(data).data?.recent_writes) ?? [];
    const applied: ReadonlySet<string> = new Set(writes.flatMap((w) => w.event_ids));
    const batch = new Set(eventIds);
    const repeated = writes.flatMap((w, i) => (w.writer === options?.writer && w.event_ids.some((id) => batch.has(id)) ? [i] : []));
    const first = repeated[0];
    const last = repeated.at(-1);
    const previousSegment = first === undefined ? storedSegment(header) : writes[first]!.previous_segment;
    const previousModelVersion = header?.model_version ?? null;
    const differs = (to: SegmentRef) => segmentChangedFrom(previousSegment, to);
    if (stored !== null && eventIds.length > 0 && eventIds.every((id) => applied.has(id))) {
      if (last === undefined) {
        // Applied by another run: a late duplicate of an old event, nothing to report.
        return {
          result: {
            written: false,
            outcome: 'not_newer',
            previousSegment: segmentOf(stored),
            previousModelVersion,
            segmentChanged: false,
            profile: stored,
            stored,
            alreadyApplied: true,
          },
        };
      }
      const after = writes[last + 1]?.previous_segment ?? segmentOf(stored);
      const reported = { ...stored, segment_id: after.id, segment_label: after.label, parent_segment: after.parent ?? null };
      return {
        result: {
          written: true,
          outcome: 'updated',
          previousSegment,
          previousModelVersion,
          segmentChanged: differs(after),
          profile: reported,
          stored,
          alreadyApplied: true,
        },
      };
    }
    const parsed = ProfileSchema.safeParse(compute(stored, applied));
    if (!parsed.success) throw invalidProfile(profileProblems(parsed.error));
    const profile = parsed.data;
    if (profile.customer_id !== customerId) {
      throw invalidProfile([`customer_id: expected ${customerId} (the document being updated), found ${profile.customer_id}`]);
    }
    if (header !== null && compareProfileRecency(profile, header) <= 0) {
      return {
        result: {
          written: false,
          outcome: 'not_newer',
          previousSegment,
          previousModelVersion,
          segmentChanged: false,
          profile,
          stored,
          alreadyApplied: false,
        },
      };
    }
    const document =
      options === undefined
        ? toDocument(profile)
        : {
            ...toDocument(profile),
            recent_writes: [...writes, { event_ids: [...eventIds], previous_segment: previousSegment, writer: options.writer }].slice(
              -RECENT_WRITES_KEPT,
            ),
          };
    const outcome = data === undefined ? 'created' : 'updated';
    return {
      result: {
        written: true,
        outcome,
        previousSegment,
        previousModelVersion,
        segmentChanged: differs(segmentOf(profile)),
        profile,
        stored,
        alreadyApplied: false,
      },
      document,
    };
  }

  async function readVersion(ref: DocumentReference): Promise<DocumentVersion> {
    const snap = await ref.get();
    return { data: snap.exists ? snap.data() : undefined, updateTime: snap.updateTime };
  }

  /** Writes `document` in place of `version` if that is still what is stored; returns the commit time. */
  async function writeIfUnchanged(ref: DocumentReference, document: DocumentData, version: DocumentVersion): Promise<Timestamp> {
    if (version.data === undefined) return (await ref.create(document)).writeTime;
    // update() replaces each top-level field it names (maps included); naming by FieldPath keeps any
    // character in a key literal, and fields the new document lacks are deleted, so what is stored
    // afterwards equals `document`, as a set() would leave it.
    const fields = [
      ...Object.keys(version.data)
        .filter((k) => !Object.hasOwn(document, k))
        .flatMap((k) => [new FieldPath(k), FieldValue.delete()]),
      ...Object.entries(document).flatMap(([k, v]) => [new FieldPath(k), v]),
    ];
    const [firstField, firstValue, ...rest] = fields as [InstanceType<typeof FieldPath>, unknown, ...unknown[]];
    return (await ref.update(firstField, firstValue, ...rest, { lastUpdateTime: version.updateTime! })).writeTime;
  }

  return async function updateProfile(
    customerId: string,
    compute: (stored: Profile | null, applied: ReadonlySet<string>) => Profile,
    options?: UpdateProfileOptions,
  ): Promise<UpdateProfileResult> {
    const ref = collection.doc(customerId);
    for (let attempt = 1; ; attempt++) {
      const remembered = lastWritten.get(customerId);
      const version = remembered ?? (await readVersion(ref));
      const { result, document } = decide(customerId, version.data, compute, options);
      if (document === undefined) {
        if (remembered === undefined) {
          log.debug({ customerId, outcome: result.outcome }, 'profile update');
          return { ...result, committedAt: null };
        }
        lastWritten.delete(customerId);
        continue;
      }
      try {
        const committed = await writeIfUnchanged(ref, document, version);
        lastWritten.set(customerId, { data: document, updateTime: committed });
        log.debug({ customerId, outcome: result.outcome, segmentChanged: result.segmentChanged, attempt }, 'profile update');
        return { ...result, committedAt: committed.toDate().toISOString() };
      } catch (err) {
        lastWritten.delete(customerId);
        const code = (err as { code?: unknown }).code;
        if (typeof code !== 'number' || !CONFLICT_CODES.has(code) || attempt >= MAX_UPDATE_ATTEMPTS) throw err;
      }
    }
  };
}

export type OnlineProfileStore = ReturnType<typeof createProfileStore>;

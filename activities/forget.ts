/**
 * The side effects of forgetting customers (workflows/forget-customers.ts, docs/privacy.md): one
 * activity per store and page of ids, each idempotent (a retry or a rerun finds less and removes
 * nothing twice), each with a dry-run mode that only counts. The ids are read from the request's
 * pages in Firestore by each activity, never passed in or returned, so no workflow history holds
 * them; results are counts.
 */
import type { BigQuery } from '@google-cloud/bigquery';
import type { Firestore } from '@google-cloud/firestore';
import type { File, Storage } from '@google-cloud/storage';
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Config } from '../core/config.js';
import {
  decodeNdjsonGz,
  encodeLinesGzAsync,
  LAKE_AREAS,
  ndjsonLine,
  quarantineObjectName,
  rawObjectName,
  type LakeArea,
} from '../core/lake.js';
import type { Logger } from '../core/logger.js';
import { pagesOf } from '../core/privacy.js';
import { loadSqlProject } from '../elt/load-project.js';
import { qualifiedTable } from '../elt/names.js';
import { modelTable, type SqlProject } from '../elt/project.js';
import { createForgetRequestStore, type ForgetAuditRecord } from '../stores/forget-requests.js';
import { customerIdOfBody, type SuppressionList } from '../stores/suppression.js';
import { ExtractSchema, MODELS_PREFIX } from '../stores/model-registry.js';
import { heartbeat, whileHeartbeating } from './heartbeat.js';
import type { WebhookActivities } from './webhooks.js';

export interface ForgetDeps {
  firestore: Firestore;
  storage: Storage;
  bigquery: BigQuery;
  config: Config;
  logger: Logger;
  suppression: SuppressionList;
  webhooks: Pick<WebhookActivities, 'deliverCustomerForgotten'>;
  /** The SQL models whose tables are searched; read from `sql/` when absent. */
  project?: SqlProject;
  /** The Temporal client; the activity context's when absent. */
  temporal?: () => Client;
}

export interface ForgetPageInput {
  requestId: string;
  page: number;
  dryRun: boolean;
}

/** What one activity found of the ids in its store, and removed (0 in a dry run). */
export interface StoreOutcome {
  found: number;
  removed: number;
  detail: Record<string, number>;
}

export interface ForgetPlan {
  customers: number;
  pages: number;
  dryRun: boolean;
  settleMs: number;
  subscribers: string[];
}

interface LakeScanProgress {
  pageToken?: string;
  outcome: StoreOutcome;
}

const LAKE_LIST_PAGE = 200;
const TEMPORAL_DELETE_WAIT_MS = 30_000;
const PARTITION = /dt=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\//;

export function createForgetActivities(deps: ForgetDeps) {
  const { firestore, storage, bigquery, config, logger, suppression, webhooks } = deps;
  const requests = createForgetRequestStore({ firestore, config });
  const profiles = firestore.collection(config.firestore.profiles);
  const bucket = storage.bucket(config.lake.bucket);
  const log = logger.child({ component: 'forget' });
  const temporal = deps.temporal ?? (() => Context.current().client);
  let project = deps.project;

  /** Every BigQuery table segflow writes that holds customer rows: raw.events, every SQL model's table, the segment assignments. */
  function warehouseTables(): Array<{ dataset: string; table: string }> {
    project ??= loadSqlProject();
    const tables = [{ dataset: config.warehouse.raw, table: 'events' }];
    for (const model of project.models) {
      const { dataset, table } = modelTable(model);
      tables.push({ dataset: config.warehouse[dataset], table });
    }
    tables.push({ dataset: config.warehouse.marts, table: 'customer_segments' });
    return tables;
  }

  async function tableExists(dataset: string, table: string): Promise<boolean> {
    const [exists] = await bigquery.dataset(dataset).table(table).exists();
    return exists;
  }

  async function query(sql: string, ids: readonly string[]): Promise<Record<string, unknown>[]> {
    const [rows] = await bigquery.query({
      query: sql,
      location: config.gcp.location,
      params: { ids: [...ids] },
      types: { ids: ['STRING'] },
    });
    return rows as Record<string, unknown>[];
  }

  async function warehouse(ids: readonly string[], dryRun: boolean): Promise<StoreOutcome> {
    const out: StoreOutcome = { found: 0, removed: 0, detail: {} };
    for (const { dataset, table } of warehouseTables()) {
      if (!(await tableExists(dataset, table))) continue;
      const ref = qualifiedTable(config.gcp.projectId, dataset, table);
      const [row] = await whileHeartbeating(() => query(`SELECT COUNT(*) AS n FROM ${ref} WHERE customer_id IN UNNEST(@ids)`, ids));
      const n = Number(row?.n ?? 0);
      out.found += n;
      out.detail[`${dataset}.${table}`] = n;
      if (n > 0 && !dryRun) {
        await whileHeartbeating(() => query(`DELETE FROM ${ref} WHERE customer_id IN UNNEST(@ids)`, ids));
        out.removed += n;
      }
    }
    return out;
  }

  /** The ids of the customer a lake record belongs to (raw: its field; quarantine: the body, if it parses, and the attributes). */
  function customerOf(area: LakeArea, record: Record<string, unknown>): string | undefined {
    if (area === 'raw') return typeof record.customer_id === 'string' ? record.customer_id : undefined;
    const body = typeof record.data_base64 === 'string' ? customerIdOfBody(Buffer.from(record.data_base64, 'base64')) : undefined;
    if (body !== undefined) return body;
    const attributes = typeof record.attributes === 'string' ? customerIdOfBody(record.attributes) : undefined;
    return attributes;
  }

  /**
   * Rewrites one object without the ids' records, under the name its remaining message ids give
   * (the ingestion naming rule), then deletes the old object; an object left empty is deleted. A
   * crash in between leaves the old object, which the next attempt finds and rewrites the same way.
   */
  async function scrubObject(area: LakeArea, file: File, ids: ReadonlySet<string>, dryRun: boolean, out: StoreOutcome): Promise<void> {
    // The stored gzip bytes, not the client's transcoded copy.
    const [data] = await file.download({ decompress: false });
    const records = decodeNdjsonGz(data) as Array<Record<string, unknown>>;
    const kept = records.filter((r) => {
      const id = customerOf(area, r);
      return id === undefined || !ids.has(id);
    });
    const removed = records.length - kept.length;
    if (removed === 0) return;
    out.found += removed;
    out.detail.objects_with_records = (out.detail.objects_with_records ?? 0) + 1;
    if (dryRun) return;
    if (kept.length === 0) {
      await file.delete({ ignoreNotFound: true });
      out.detail.objects_deleted = (out.detail.objects_deleted ?? 0) + 1;
    } else {
      const m = PARTITION.exec(file.name);
      if (!m) throw new Error(`lake object ${file.name}: expected a dt=YYYY-MM-DD/hour=HH/ partition in its name`);
      const hour = new Date(`${m[1]}T${m[2]}:00:00Z`);
      const name = (area === 'raw' ? rawObjectName : quarantineObjectName)(
        hour,
        kept.map((r) => String(r.message_id)),
      );
      await bucket.file(name).save(await encodeLinesGzAsync(kept.map(ndjsonLine)), {
        resumable: false,
        contentType: 'application/x-ndjson',
        metadata: { contentEncoding: 'gzip' },
        gzip: false,
      });
      if (name !== file.name) await file.delete({ ignoreNotFound: true });
      out.detail.objects_rewritten = (out.detail.objects_rewritten ?? 0) + 1;
    }
    out.removed += removed;
  }

  /** One pass over an area of the lake, resumed from the last listed page after a retry. */
  async function lake(area: LakeArea, ids: ReadonlySet<string>, dryRun: boolean, resume?: LakeScanProgress): Promise<StoreOutcome> {
    const out: StoreOutcome = resume?.outcome ?? { found: 0, removed: 0, detail: { objects_scanned: 0 } };
    if (!(await bucket.exists())[0]) return out; // no lake yet: nothing of anyone
    let pageToken = resume?.pageToken;
    for (;;) {
      const [files, next] = await bucket.getFiles({
        prefix: LAKE_AREAS[area],
        autoPaginate: false,
        maxResults: LAKE_LIST_PAGE,
        ...(pageToken ? { pageToken } : {}),
      });
      for (const file of files) {
        if (!file.name.endsWith('.ndjson.gz')) continue;
        await scrubObject(area, file, ids, dryRun, out);
        out.detail.objects_scanned = (out.detail.objects_scanned ?? 0) + 1;
        // A retry restarts at the start of this listing page: objects of it already rewritten are found clean.
        heartbeat({ ...(pageToken ? { pageToken } : {}), outcome: out } satisfies LakeScanProgress);
      }
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
      heartbeat({ ...(pageToken ? { pageToken } : {}), outcome: out } satisfies LakeScanProgress);
      if (!pageToken) return out;
    }
  }

  /**
   * The nightly segmentation's extract files (`<models>/runs/<version>/extract.json`) hold the
   * sampled customers' ids and features: each is rewritten without the ids' entries.
   */
  async function segmentationRuns(ids: ReadonlySet<string>, dryRun: boolean): Promise<StoreOutcome> {
    const out: StoreOutcome = { found: 0, removed: 0, detail: { files_scanned: 0 } };
    if (!(await bucket.exists())[0]) return out;
    const [files] = await bucket.getFiles({ prefix: `${MODELS_PREFIX}/runs/` });
    for (const file of files.filter((f) => f.name.endsWith('/extract.json'))) {
      out.detail.files_scanned! += 1;
      const [data] = await file.download();
      const extract = ExtractSchema.parse(JSON.parse(data.toString('utf8')));
      const keep = extract.ids.map((id) => !ids.has(id));
      const n = keep.filter((k) => !k).length;
      if (n === 0) continue;
      out.found += n;
      if (dryRun) continue;
      const next = {
        ...extract,
        ids: extract.ids.filter((_, i) => keep[i]),
        columns: extract.columns.map((c) => c.filter((_, i) => keep[i])),
      };
      await file.save(JSON.stringify(next), { resumable: false, contentType: 'application/json' });
      out.removed += n;
      heartbeat();
    }
    return out;
  }

  async function firestoreProfiles(ids: readonly string[], dryRun: boolean): Promise<StoreOutcome> {
    const refs = ids.map((id) => profiles.doc(id));
    const snaps = refs.length > 0 ? await firestore.getAll(...refs) : [];
    const existing = snaps.filter((s) => s.exists);
    if (!dryRun && existing.length > 0) {
      const batch = firestore.batch();
      for (const s of existing) batch.delete(s.ref);
      await batch.commit();
    }
    return { found: existing.length, removed: dryRun ? 0 : existing.length, detail: { profiles: existing.length } };
  }

  /** Every run of the ids' reclassifyCustomer workflows: the running one ended, and all deleted with their histories. */
  async function reclassifyRuns(ids: readonly string[], dryRun: boolean): Promise<StoreOutcome> {
    const client = temporal();
    const namespace = config.temporal.namespace;
    const out: StoreOutcome = { found: 0, removed: 0, detail: { running: 0 } };
    for (const id of ids) {
      const workflowId = `${config.schedules.prefix}reclassify/${id}`;
      const runs = new Map<string, boolean>();
      try {
        const d = await client.workflow.getHandle(workflowId).describe();
        runs.set(d.runId, d.status.name === 'RUNNING');
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
      for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
        if (!runs.has(w.runId)) runs.set(w.runId, w.status.name === 'RUNNING');
      }
      out.found += runs.size;
      for (const running of runs.values()) if (running) out.detail.running! += 1;
      if (dryRun) continue;
      for (const runId of runs.keys()) {
        try {
          // Deleting a running execution terminates it first; its history goes with it.
          await client.workflowService.deleteWorkflowExecution({ namespace, workflowExecution: { workflowId, runId } });
          out.removed += 1;
        } catch (err) {
          if ((err as { code?: number }).code !== 5) throw err; // NOT_FOUND: already deleted
        }
      }
      heartbeat();
    }
    return out;
  }

  /**
   * How many of the ids' reclassification workflows Temporal still knows. Deletion runs in the
   * background on the server, so this waits up to TEMPORAL_DELETE_WAIT_MS for it to finish.
   */
  async function reclassifyRemaining(ids: readonly string[]): Promise<number> {
    const client = temporal();
    let left = [...ids];
    const deadline = Date.now() + TEMPORAL_DELETE_WAIT_MS;
    for (;;) {
      const still: string[] = [];
      for (const id of left) {
        try {
          await client.workflow.getHandle(`${config.schedules.prefix}reclassify/${id}`).describe();
          still.push(id);
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
      }
      left = still;
      if (left.length === 0 || Date.now() > deadline) return left.length;
      heartbeat();
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  return {
    async forgetPlan({ requestId }: { requestId: string }): Promise<ForgetPlan> {
      const meta = await requests.requestMeta(requestId);
      if (meta === undefined) throw new Error(`forget request ${requestId} not found; start it with npm run ops -- forget`);
      return {
        customers: meta.customers,
        pages: meta.pages,
        dryRun: meta.dry_run,
        settleMs: meta.dry_run ? 0 : config.privacy.settleMs,
        subscribers: config.webhooks.map((s) => s.id),
      };
    },

    async forgetSuppress({ requestId, page, dryRun }: ForgetPageInput): Promise<StoreOutcome> {
      const ids = await requests.pageIds(requestId, page);
      if (dryRun) {
        const already = (await suppression.suppressedNow(ids)).size;
        return { found: already, removed: 0, detail: { already_suppressed: already } };
      }
      const r = await suppression.suppress(ids, requestId);
      return { found: r.alreadySuppressed, removed: r.added, detail: { added: r.added, already_suppressed: r.alreadySuppressed } };
    },

    async forgetReclassify({ requestId, page, dryRun }: ForgetPageInput): Promise<StoreOutcome> {
      return reclassifyRuns(await requests.pageIds(requestId, page), dryRun);
    },

    async forgetLake({ requestId, area, dryRun }: { requestId: string; area: LakeArea; dryRun: boolean }): Promise<StoreOutcome> {
      const ids = new Set(await requests.allIds(requestId));
      const resume = Context.current().info.heartbeatDetails as LakeScanProgress | undefined;
      return lake(area, ids, dryRun, resume);
    },

    async forgetSegmentationRuns({ requestId, dryRun }: { requestId: string; dryRun: boolean }): Promise<StoreOutcome> {
      return segmentationRuns(new Set(await requests.allIds(requestId)), dryRun);
    },

    async forgetWarehouse({ requestId, page, dryRun }: ForgetPageInput): Promise<StoreOutcome> {
      return warehouse(await requests.pageIds(requestId, page), dryRun);
    },

    async forgetProfiles({ requestId, page, dryRun }: ForgetPageInput): Promise<StoreOutcome> {
      return firestoreProfiles(await requests.pageIds(requestId, page), dryRun);
    },

    async forgetNotify(input: { requestId: string; page: number; subscriberId: string; occurredAt: string }): Promise<StoreOutcome> {
      const customerIds = await requests.pageIds(input.requestId, input.page);
      const r = await webhooks.deliverCustomerForgotten({
        deliveryId: `${input.requestId}/${input.page}/${input.subscriberId}`,
        subscriberId: input.subscriberId,
        requestId: input.requestId,
        customerIds,
        occurredAt: input.occurredAt,
      });
      return { found: customerIds.length, removed: r.delivered ? customerIds.length : 0, detail: { delivered: r.delivered ? 1 : 0 } };
    },

    /** Searches every store again for all the request's ids: what is found of them, per store (all zero when forgotten). */
    async forgetVerify({ requestId }: { requestId: string }): Promise<Record<string, number>> {
      const ids = await requests.allIds(requestId);
      const set = new Set(ids);
      const out: Record<string, number> = { not_suppressed: 0, temporal_workflows: 0, firestore_profiles: 0, warehouse_rows: 0 };
      for (const area of Object.keys(LAKE_AREAS) as LakeArea[]) out[`lake_${area}_records`] = (await lake(area, set, true)).found;
      out.segmentation_run_entries = (await segmentationRuns(set, true)).found;
      for (const page of pagesOf(ids)) {
        out.not_suppressed! += page.length - (await suppression.suppressedNow(page)).size;
        out.temporal_workflows! += await reclassifyRemaining(page);
        out.firestore_profiles! += (await firestoreProfiles(page, true)).found;
        out.warehouse_rows! += (await warehouse(page, true)).found;
        heartbeat();
      }
      return out;
    },

    /** Writes the audit record (hashes and counts only) and erases the request's ids. Idempotent. */
    async forgetFinish(input: {
      requestId: string;
      workflowId: string;
      stores: Record<string, Record<string, number>>;
      verification: Record<string, number>;
    }): Promise<{ audit: string }> {
      const meta = await requests.requestMeta(input.requestId);
      if (meta === undefined) {
        // Erased by an earlier attempt, after its audit record was written.
        if (await requests.readAudit(input.requestId)) return { audit: input.requestId };
        throw new Error(`forget request ${input.requestId} not found and no audit record for it`);
      }
      const ids = await requests.allIds(input.requestId);
      const record: ForgetAuditRecord = {
        request_id: input.requestId,
        workflow_id: input.workflowId,
        dry_run: meta.dry_run,
        note: meta.note,
        requested_by: meta.requested_by,
        requested_at: meta.requested_at,
        completed_at: new Date().toISOString(),
        customer_hashes: requests.hashes(ids),
        customers: ids.length,
        stores: input.stores,
        verification: input.verification,
        verified: Object.values(input.verification).every((n) => n === 0),
      };
      await requests.writeAudit(record);
      await requests.eraseRequest(input.requestId);
      log.info(
        { requestId: input.requestId, customers: ids.length, dryRun: meta.dry_run, verified: record.verified },
        'forget request done',
      );
      return { audit: input.requestId };
    },
  };
}

export type ForgetActivities = ReturnType<typeof createForgetActivities>;

/**
 * Model operations behind `npm run ops -- models ...`: list and show registered versions, diff two
 * (a promotion dry-run), promote and roll back. The switch is one write of current.json
 * (stores/model-registry.ts); every switch is recorded in marts.segment_promotions with who, when
 * and why. Readers take the new model without a restart: the API reads current.json per request,
 * the real-time path re-reads it every SEGFLOW_MODEL_POINTER_TTL_MS.
 */
import type { BigQuery } from '@google-cloud/bigquery';
import type { Storage } from '@google-cloud/storage';
import os from 'node:os';
import type { Config } from '../core/config.js';
import type { SegmentModel } from '../core/segmentation/index.js';
import { subscribersForChange } from '../core/webhook-config.js';
import {
  listRegisteredModels,
  loadCurrentPointer,
  loadModelVersion,
  readPromotions,
  readSegmentSizes,
  readStabilityRows,
  readTransitions,
  recordPromotion,
  writeCurrentPointer,
  type PromotionAction,
  type PromotionRecord,
  type RegisteredModel,
  type SegmentSize,
  type StabilityRow,
  type TransitionCell,
} from '../stores/model-registry.js';
import { OpsError } from './ops-lib.js';

export interface ModelsContext {
  readonly bigquery: BigQuery;
  readonly storage: Storage;
  readonly config: Config;
}

export interface ModelListEntry extends RegisteredModel {
  /** The stability decision the nightly run took for this version; null when none was recorded. */
  decision: StabilityRow['decision'] | null;
  silhouette: number | null;
}

export interface ModelList {
  current: string | null;
  models: ModelListEntry[];
}

function numberOr(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

export async function listModels(ctx: ModelsContext, opts: { limit?: number } = {}): Promise<ModelList> {
  const [models, pointer, stability] = await Promise.all([
    listRegisteredModels(ctx, opts.limit ?? 100),
    loadCurrentPointer(ctx.storage, ctx.config.lake.bucket),
    readStabilityRows(ctx, { limit: 1000 }),
  ]);
  const decisionOf = new Map<string, StabilityRow['decision']>();
  for (const row of stability) if (!decisionOf.has(row.model_version)) decisionOf.set(row.model_version, row.decision);
  const current = pointer?.version ?? null;
  return {
    current,
    models: models.map((m) => ({
      ...m,
      // current.json is the truth; the column follows it after each recorded switch.
      is_current: m.version === current,
      decision: decisionOf.get(m.version) ?? null,
      silhouette: numberOr(m.metrics.silhouette),
    })),
  };
}

export interface ModelDetail {
  version: string;
  is_current: boolean;
  registered: RegisteredModel | null;
  created_at: string;
  k: number;
  silhouette: number;
  features: string[];
  segments: Array<SegmentSize & { traits: string[] }>;
  /** customer_segments when the warehouse holds this version's assignment, else the training sample. */
  size_source: 'customer_segments' | 'training_sample';
  stability: StabilityRow | null;
  promotions: PromotionRecord[];
}

async function requireModel(ctx: ModelsContext, version: string): Promise<SegmentModel> {
  let model: SegmentModel | null;
  try {
    model = await loadModelVersion(ctx.storage, ctx.config.lake.bucket, version);
  } catch (err) {
    throw new OpsError(`the artifact of ${version} is unreadable: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (model === null) throw new OpsError(`no model version ${version} in gs://${ctx.config.lake.bucket} (ops models list shows them)`);
  if (model.version !== version) throw new OpsError(`the artifact of ${version} holds version ${model.version}; it cannot be promoted`);
  return model;
}

export async function showModel(ctx: ModelsContext, version: string): Promise<ModelDetail> {
  const model = await requireModel(ctx, version);
  const [list, sizes, stability, promotions] = await Promise.all([
    listModels(ctx, { limit: 1000 }),
    readSegmentSizes(ctx, version),
    readStabilityRows(ctx, { version, limit: 1 }),
    readPromotions(ctx, { version }),
  ]);
  const counted = new Map(sizes.map((s) => [s.segment_id, s]));
  const fromWarehouse = sizes.length > 0;
  const trainingTotal = model.segments.reduce((s, seg) => s + seg.size, 0);
  return {
    version,
    is_current: list.current === version,
    registered: list.models.find((m) => m.version === version) ?? null,
    created_at: model.created_at,
    k: model.centroids.length,
    silhouette: model.metrics.silhouette,
    features: model.preparation.features.map((f) => f.name),
    size_source: fromWarehouse ? 'customer_segments' : 'training_sample',
    segments: model.segments.map((s) => {
      const customers = fromWarehouse ? (counted.get(s.id)?.customers ?? 0) : s.size;
      const share = fromWarehouse ? (counted.get(s.id)?.share ?? 0) : trainingTotal > 0 ? s.size / trainingTotal : 0;
      return { segment_id: s.id, segment_label: s.label, customers, share, traits: s.traits };
    }),
    stability: stability[0] ?? null,
    promotions,
  };
}

// ---------------------------------------------------------------- diff: a promotion dry-run

export interface ModelDiff {
  from: string;
  to: string;
  /** Customers assigned in both versions. */
  compared: number;
  /** Of those, customers whose segment id differs. */
  changed: number;
  changed_share: number;
  /** Assigned in only one of the two versions (customers that appeared or left between them). */
  only_in_from: number;
  only_in_to: number;
  /** Every (from segment, to segment) pair with its customers, the diagonal included. */
  matrix: Array<TransitionCell & { from_label: string; to_label: string }>;
  /** Segment-change webhooks each configured subscriber would receive for the changed customers (its filter applied). */
  deliveries: Array<{ subscriber: string; deliveries: number }>;
}

function labelsOf(model: SegmentModel): Map<number, string> {
  return new Map(model.segments.map((s) => [s.id, s.label]));
}

export async function diffModels(ctx: ModelsContext, from: string, to: string): Promise<ModelDiff> {
  const [a, b] = await Promise.all([requireModel(ctx, from), requireModel(ctx, to)]);
  const { cells, onlyFrom, onlyTo } = await readTransitions(ctx, from, to);
  if (cells.length === 0 && onlyFrom === 0 && onlyTo === 0) {
    throw new OpsError(`neither ${from} nor ${to} has customers in ${ctx.config.warehouse.marts}.customer_segments; nothing to compare`);
  }
  const fromLabels = labelsOf(a);
  const toLabels = labelsOf(b);
  const matrix = cells.map((c) => ({
    ...c,
    from_label: fromLabels.get(c.from_id) ?? `segment ${c.from_id}`,
    to_label: toLabels.get(c.to_id) ?? `segment ${c.to_id}`,
  }));
  const compared = cells.reduce((s, c) => s + c.customers, 0);
  const moves = matrix.filter((c) => c.from_id !== c.to_id);
  const changed = moves.reduce((s, c) => s + c.customers, 0);
  const deliveries = ctx.config.webhooks.map((subscriber) => ({
    subscriber: subscriber.id,
    deliveries: moves
      .filter(
        (c) => subscribersForChange([subscriber], { id: c.from_id, label: c.from_label }, { id: c.to_id, label: c.to_label }).length > 0,
      )
      .reduce((s, c) => s + c.customers, 0),
  }));
  return {
    from,
    to,
    compared,
    changed,
    changed_share: compared > 0 ? changed / compared : 0,
    only_in_from: onlyFrom,
    only_in_to: onlyTo,
    matrix,
    deliveries,
  };
}

// ---------------------------------------------------------------- promote, rollback

export interface PromotionResult extends PromotionRecord {
  /** False when the version was current and recorded already: nothing was written. */
  changed: boolean;
  /** The nightly run had held this version (policy hold); this promotion released it. */
  released_hold: boolean;
}

/** Who runs the command: --by, else SEGFLOW_OPERATOR, else user@host. */
export function operatorName(by: string | undefined): string {
  const name = by ?? process.env.SEGFLOW_OPERATOR;
  if (name !== undefined && name.trim() !== '') return name.trim();
  return `${os.userInfo().username}@${os.hostname()}`;
}

async function switchTo(
  ctx: ModelsContext,
  version: string,
  opts: { action: Exclude<PromotionAction, 'nightly'>; note: string; by: string },
): Promise<PromotionResult> {
  if (opts.note.trim() === '') throw new OpsError('--note: expected why (a ticket, a reason); found an empty note');
  await requireModel(ctx, version);
  const bucket = ctx.config.lake.bucket;
  const [pointer, latest, stability] = await Promise.all([
    loadCurrentPointer(ctx.storage, bucket),
    readPromotions(ctx, { limit: 1 }),
    readStabilityRows(ctx, { version, limit: 1 }),
  ]);
  const released = stability[0]?.decision === 'hold';
  const previous = pointer?.version ?? null;
  if (previous === version && latest[0]?.model_version === version) {
    return { ...latest[0], changed: false, released_hold: false };
  }
  // The switch itself: one write of current.json. Already current but unrecorded (an earlier
  // command failed after its write) means only the record below is missing.
  if (previous !== version) await writeCurrentPointer(ctx.storage, bucket, version);
  const record: PromotionRecord = {
    model_version: version,
    previous_version: previous === version ? (latest[0]?.model_version ?? null) : previous,
    action: opts.action,
    promoted_by: opts.by,
    note: opts.note,
    promoted_at: new Date().toISOString(),
  };
  try {
    await recordPromotion(ctx, record);
  } catch (err) {
    throw new Error(
      `current.json now points at ${version}, but recording the switch failed: ${err instanceof Error ? err.message : String(err)}. ` +
        `Run \`ops models promote ${version} --note ...\` again once BigQuery answers: it records without switching again.`,
      { cause: err },
    );
  }
  return { ...record, changed: true, released_hold: released };
}

export function promoteModel(ctx: ModelsContext, version: string, opts: { note: string; by: string }): Promise<PromotionResult> {
  return switchTo(ctx, version, { action: 'promote', ...opts });
}

/**
 * Back to the version that was current before the current one (as `kubectl rollout undo`: a
 * second rollback undoes the first). Taken from the record of the current version's promotion,
 * else from its stability row (models promoted before promotions were recorded).
 */
export async function rollbackTarget(ctx: ModelsContext): Promise<{ current: string; target: string }> {
  const pointer = await loadCurrentPointer(ctx.storage, ctx.config.lake.bucket);
  if (pointer === null) throw new OpsError('no model is current yet; nothing to roll back');
  const [records, stability] = await Promise.all([
    readPromotions(ctx, { version: pointer.version, limit: 1 }),
    readStabilityRows(ctx, { version: pointer.version, limit: 1 }),
  ]);
  const target = records[0]?.previous_version ?? stability[0]?.previous_version ?? null;
  if (target === null || target === pointer.version) {
    throw new OpsError(`no version was current before ${pointer.version}; choose one with \`ops models promote <version>\``);
  }
  return { current: pointer.version, target };
}

export async function rollbackModel(ctx: ModelsContext, opts: { note: string; by: string }): Promise<PromotionResult> {
  const { target } = await rollbackTarget(ctx);
  return switchTo(ctx, target, { action: 'rollback', ...opts });
}

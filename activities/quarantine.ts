/**
 * Quarantine replay activities: list the quarantine objects of a range of arrival hours, and replay
 * one object: re-validate each message against the contract in force, write the now-valid ones to
 * raw/ under their original arrival hour (object named after their message ids), record them in the
 * recovery ledger, hand recovered key events to the real-time path, and rewrite the object with the
 * messages still invalid (with their new reasons). Every step is derived from the object's content,
 * so a retried or resumed replay writes the same objects again and nothing twice.
 */
import type { Storage } from '@google-cloud/storage';
import { Context } from '@temporalio/activity';
import type { Config } from '../core/config.js';
import { createEventValidator } from '../core/event-validator.js';
import { isTriggerType, type Event } from '../core/events.js';
import { groupByArrivalHour, rawObjectName, toLakeRecord, type QuarantineRecord } from '../core/lake.js';
import type { Logger } from '../core/logger.js';
import { createQuarantineStore, type QuarantineObject, type RecoveredRecord } from '../stores/quarantine.js';
import { heartbeat } from './heartbeat.js';

export interface ListQuarantineInput {
  from: string;
  to: string;
}

/** Where recovered key events go: the reclassify workflow type, its signal and id prefix, named by the workflow. */
export interface RealtimeTarget {
  workflowType: string;
  signal: string;
  /** Workflow id of a customer: this prefix + customer id. */
  workflowIdPrefix: string;
  idleMinutes: number;
}

export interface ReplayObjectInput {
  object: string;
  /** The replay's workflow id, kept in the ledger. */
  replay: string;
  /** Only messages carrying this reason code are re-validated; the rest stay as they are. */
  reason?: string;
  /** Count only: write nothing (the plan of a replay). */
  dryRun?: boolean;
  realtime?: RealtimeTarget;
}

export interface ReplayObjectResult {
  object: string;
  examined: number;
  recovered: number;
  stillInvalid: number;
  /** Still invalid, but with reasons different from those recorded. */
  reasonsChanged: number;
  /** Dropped because their customer is suppressed (forgotten). */
  suppressed: number;
  /** Arrival hours (ISO) that got recovered events: the hourly intervals to rerun. */
  hours: string[];
  rawObjects: string[];
  /** Key events handed to the real-time path. */
  triggers: number;
  /** Still-invalid reason codes after re-validation, messages per code. */
  reasons: Record<string, number>;
}

export interface QuarantineDeps {
  storage: Storage;
  config: Config;
  logger: Logger;
  /**
   * Customers whose data must not come back (forgotten customers). The seam for the suppression
   * list: messages of the ids returned are neither recovered nor kept in the quarantine.
   */
  suppressedCustomers?: (customerIds: readonly string[]) => Promise<ReadonlySet<string>>;
}

const sameReasons = (a: QuarantineRecord['reasons'], b: QuarantineRecord['reasons']) => JSON.stringify(a) === JSON.stringify(b);

export function createQuarantineActivities({ storage, config, logger, suppressedCustomers }: QuarantineDeps) {
  const store = createQuarantineStore({ storage, bucket: config.lake.bucket });
  const validator = createEventValidator(config.ingest);

  async function signalRealtime(target: RealtimeTarget, events: ReadonlyArray<{ event: Event; publishTime: string }>): Promise<void> {
    const byCustomer = new Map<string, Array<{ event: Event; publishTime: string }>>();
    for (const e of events) byCustomer.set(e.event.customer_id, [...(byCustomer.get(e.event.customer_id) ?? []), e]);
    const client = Context.current().client;
    for (const [customerId, signals] of byCustomer) {
      // The customer's workflow drops event ids it has seen, so a retried replay signals harmlessly.
      await client.workflow.signalWithStart(target.workflowType, {
        workflowId: `${target.workflowIdPrefix}${customerId}`,
        taskQueue: config.temporal.taskQueue,
        args: [{ customerId, idleMinutes: target.idleMinutes }],
        searchAttributes: { CustomerId: [customerId] },
        signal: target.signal,
        signalArgs: [{ events: signals }],
      });
      heartbeat({ stage: 'signalling', customerId });
    }
  }

  return {
    async listQuarantineObjects(input: ListQuarantineInput): Promise<QuarantineObject[]> {
      return store.listObjects(new Date(input.from), new Date(input.to));
    },

    async replayQuarantineObject(input: ReplayObjectInput): Promise<ReplayObjectResult> {
      const log = logger.child({ activity: 'replayQuarantineObject', object: input.object, replay: input.replay });
      const records = await store.readObject(input.object).catch((err: unknown) => {
        // Gone: an earlier attempt recovered every message of it and deleted it.
        if ((err as { code?: number }).code === 404) return [] as QuarantineRecord[];
        throw err;
      });
      const now = new Date();
      const kept: QuarantineRecord[] = [];
      const valid: Array<{ record: QuarantineRecord; event: Event }> = [];
      let reasonsChanged = 0;
      const reasons: Record<string, number> = {};
      for (const record of records) {
        if (input.reason !== undefined && !record.reasons.some((r) => r.code === input.reason)) {
          kept.push(record);
          continue;
        }
        const result = validator.validate(
          {
            data: Buffer.from(record.data_base64, 'base64'),
            attributes: JSON.parse(record.attributes) as Record<string, string>,
            publishTime: new Date(record.publish_time),
            messageId: record.message_id,
          },
          now,
        );
        if (result.ok) {
          valid.push({ record, event: result.event });
          continue;
        }
        const fresh = result.reasons.map((r) => ({ code: r.code, path: r.path ?? null, message: r.message }));
        for (const code of new Set(fresh.map((r) => r.code))) reasons[code] = (reasons[code] ?? 0) + 1;
        if (sameReasons(fresh, record.reasons)) kept.push(record);
        else {
          reasonsChanged += 1;
          kept.push({ ...record, reasons: fresh });
        }
      }

      // Forgotten customers' messages are neither recovered nor kept (docs/privacy.md).
      const suppressed = suppressedCustomers
        ? await suppressedCustomers([...new Set(valid.map((v) => v.event.customer_id))])
        : new Set<string>();
      const recovered = valid.filter((v) => !suppressed.has(v.event.customer_id));

      const result: ReplayObjectResult = {
        object: input.object,
        examined: records.length,
        recovered: recovered.length,
        stillInvalid: kept.length - (valid.length - recovered.length),
        reasonsChanged,
        suppressed: valid.length - recovered.length,
        hours: [],
        rawObjects: [],
        triggers: 0,
        reasons,
      };
      if (input.dryRun || (recovered.length === 0 && reasonsChanged === 0)) return result;

      for (const group of groupByArrivalHour(recovered, (v) => new Date(v.record.publish_time))) {
        const ids = group.items.map((v) => v.record.message_id);
        const rawName = rawObjectName(group.hourStart, ids);
        const lines = [...group.items]
          .sort((a, b) => (a.record.message_id < b.record.message_id ? -1 : 1))
          .map((v) =>
            toLakeRecord(v.event, {
              messageId: v.record.message_id,
              publishTime: new Date(v.record.publish_time),
              receivedAt: new Date(v.record.received_at),
            }),
          );
        await store.saveRaw(rawName, lines);
        const ledger: RecoveredRecord[] = lines.map((l) => ({
          message_id: l.message_id,
          event_id: l.event_id,
          customer_id: l.customer_id,
          type: l.type,
          quarantine_object: input.object,
          raw_object: rawName,
          replay: input.replay,
        }));
        await store.writeRecovered(group.hourStart, ledger);
        result.hours.push(group.hourStart.toISOString());
        result.rawObjects.push(rawName);
        heartbeat({ stage: 'written', object: rawName });
      }

      const triggers = recovered
        .filter((v) => isTriggerType(v.event.type))
        .map((v) => ({ event: v.event, publishTime: v.record.publish_time }));
      if (input.realtime && triggers.length > 0) {
        await signalRealtime(input.realtime, triggers);
        result.triggers = triggers.length;
      }

      // Last: until this rewrite the recovered messages are still here, so a retry finds and rewrites them again.
      await store.rewriteObject(input.object, kept);
      log.info(
        {
          recovered: recovered.length,
          stillInvalid: result.stillInvalid,
          reasonsChanged,
          suppressed: result.suppressed,
          hours: result.hours,
        },
        'quarantine object replayed',
      );
      return result;
    },
  };
}

export type QuarantineActivities = ReturnType<typeof createQuarantineActivities>;

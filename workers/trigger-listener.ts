/**
 * The trigger listener: a streaming subscriber on the key-event subscription
 * (events-triggers) that hands each purchase or profile update to its
 * customer's reclassifyCustomer workflow with signal-with-start.
 *
 * A message is acked only after Temporal accepted the signal; if Temporal
 * refuses or is unreachable the message is nacked and Pub/Sub redelivers it
 * (the workflow drops a duplicate by event id). Messages that are not key
 * events are acked and ignored (the emulator does not apply the
 * subscription's filter); invalid messages are acked and logged, because the
 * lake path quarantines them with every reason.
 */
import { Duration, type Message, type PubSub, type Subscription } from '@google-cloud/pubsub';
import type { Client } from '@temporalio/client';
import { fileURLToPath } from 'node:url';
import { closeGcpClients, createGcpClients } from '../activities/clients.js';
import type { Config } from '../core/config.js';
import { isTriggerType, TRIGGER_SUBSCRIPTION_FILTER, validateMessage } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import type { TriggerEvent } from '../core/realtime-features.js';
import {
  RECLASSIFY_WORKFLOW,
  reclassifyWorkflowId,
  triggerEventSignal,
  type ReclassifyInput,
  type TriggerSignal,
} from '../workflows/reclassify-messages.js';

export interface TriggerListenerOptions {
  /** Messages in flight at most (flow control). */
  maxInFlight?: number;
  /** Create the subscription (with its filter) when it is missing; the topic must exist or is created. */
  ensureSubscription?: boolean;
  /** Called after Temporal accepted a signal (benchmarks break latency down with it). */
  onSignalled?: (info: { eventId: string; customerId: string; receivedAt: number; signalledAt: number; publishTime: number }) => void;
}

export interface TriggerListenerStats {
  received: number;
  signalled: number;
  ignored: number;
  invalid: number;
  failed: number;
}

export interface TriggerListener {
  readonly stats: TriggerListenerStats;
  stop(): Promise<void>;
}

type ListenerConfig = Pick<Config, 'pubsub' | 'temporal' | 'ingest' | 'reclassify'>;

export async function createTriggerListener(
  deps: { pubsub: PubSub; client: Client; config: ListenerConfig; logger: Logger },
  options: TriggerListenerOptions = {},
): Promise<TriggerListener> {
  const { pubsub, client, config } = deps;
  const log = deps.logger.child({ component: 'trigger-listener', subscription: config.pubsub.triggerSubscription });
  if (options.ensureSubscription ?? true) await ensureTriggerSubscription(pubsub, config);

  const stats: TriggerListenerStats = { received: 0, signalled: 0, ignored: 0, invalid: 0, failed: 0 };
  const subscription: Subscription = pubsub.subscription(config.pubsub.triggerSubscription, {
    flowControl: { maxMessages: options.maxInFlight ?? 1_000, allowExcessMessages: false },
    maxExtensionTime: Duration.from({ minutes: 10 }),
  });
  const inFlight = new Set<Promise<void>>();

  async function handle(message: Message): Promise<void> {
    const receivedAt = Date.now();
    stats.received += 1;
    const typeAttr = message.attributes.type;
    // Cheap pre-check on the attribute; the body decides below.
    if (typeAttr !== undefined && !isTriggerType(typeAttr)) {
      stats.ignored += 1;
      message.ack();
      return;
    }
    const checked = validateMessage(
      { data: message.data, attributes: message.attributes, publishTime: message.publishTime, messageId: message.id },
      { maxBytes: config.ingest.maxEventBytes, maxFutureSkewMs: config.ingest.maxFutureSkewMs, now: new Date() },
    );
    if (!checked.ok) {
      stats.invalid += 1;
      log.warn({ messageId: message.id, reasons: checked.reasons }, 'invalid event on the trigger subscription; acked (the lake path quarantines it)');
      message.ack();
      return;
    }
    const event = checked.event;
    if (event.type !== 'purchase' && event.type !== 'profile_update') {
      stats.ignored += 1;
      message.ack();
      return;
    }
    const signal: TriggerSignal = { event: event as TriggerEvent, publishTime: message.publishTime.toISOString() };
    const args: [ReclassifyInput] = [{ customerId: event.customer_id, idleMinutes: config.reclassify.idleMinutes }];
    try {
      await client.workflow.signalWithStart(RECLASSIFY_WORKFLOW, {
        workflowId: reclassifyWorkflowId(event.customer_id),
        taskQueue: config.temporal.taskQueue,
        args,
        signal: triggerEventSignal,
        signalArgs: [signal],
        searchAttributes: { CustomerId: [event.customer_id] },
      });
      stats.signalled += 1;
      message.ack();
      options.onSignalled?.({
        eventId: event.event_id,
        customerId: event.customer_id,
        receivedAt,
        signalledAt: Date.now(),
        publishTime: message.publishTime.getTime(),
      });
    } catch (err) {
      stats.failed += 1;
      log.error(
        { messageId: message.id, customerId: event.customer_id, eventId: event.event_id, error: err instanceof Error ? err.message : String(err) },
        'signal-with-start failed; message nacked for redelivery',
      );
      message.nack();
    }
  }

  subscription.on('message', (message: Message) => {
    const p = handle(message).catch((err: unknown) => {
      log.error({ messageId: message.id, error: String(err) }, 'trigger message handling failed; nacked');
      message.nack();
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  });
  subscription.on('error', (err: Error) => {
    // The client library reconnects on retryable errors.
    log.error({ error: err.message }, 'trigger subscription error');
  });
  log.info({ taskQueue: config.temporal.taskQueue }, 'trigger listener started');

  return {
    stats,
    async stop() {
      subscription.removeAllListeners('message');
      await Promise.allSettled([...inFlight]);
      await subscription.close();
      log.info({ ...stats }, 'trigger listener stopped');
    },
  };
}

/** Creates the trigger subscription with its filter if missing (the ingestion resources do the same). */
export async function ensureTriggerSubscription(pubsub: PubSub, config: Pick<Config, 'pubsub'>): Promise<void> {
  const [exists] = await pubsub.subscription(config.pubsub.triggerSubscription).exists();
  if (exists) return;
  const [topic] = await pubsub.topic(config.pubsub.topic).get({ autoCreate: true });
  await topic
    .createSubscription(config.pubsub.triggerSubscription, { ackDeadlineSeconds: 30, filter: TRIGGER_SUBSCRIPTION_FILTER })
    .catch((err: { code?: number }) => {
      if (err.code !== 6) throw err; // ALREADY_EXISTS: another process won the race
    });
}

/**
 * For `npm start`: the listener on the worker's Pub/Sub client (or its own) and
 * a Temporal client. Returns `{ stop() }`.
 */
export async function startTriggerListener(
  config: Config,
  logger: Logger,
  client: Client,
  pubsub?: PubSub,
): Promise<{ stop(): Promise<void>; stats: TriggerListenerStats }> {
  const own = pubsub === undefined ? createGcpClients(config) : undefined;
  const listener = await createTriggerListener({ pubsub: pubsub ?? own!.pubsub, client, config, logger });
  return {
    stats: listener.stats,
    async stop() {
      await listener.stop();
      if (own) await closeGcpClients(own);
    },
  };
}

// `npm run triggers`: the listener on its own, until SIGINT/SIGTERM (npm start runs it beside the workers).
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { loadConfig } = await import('../core/config.js');
  const { createLogger } = await import('../core/logger.js');
  const { createTemporalClient } = await import('./client.js');
  const config = loadConfig();
  const logger = createLogger({ level: config.log.level, name: 'segflow-triggers' });
  const client = await createTemporalClient(config);
  const listener = await startTriggerListener(config, logger, client);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      logger.info({ signal: sig }, 'stopping the trigger listener');
      void listener.stop().then(() => client.connection.close());
    });
  }
}

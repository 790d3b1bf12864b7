/**
 * The trigger listener: a streaming subscriber on the key-event subscription
 * (events-triggers) that hands each purchase or profile update to its
 * customer's reclassifyCustomer workflow.
 *
 * Signals go out with bounded concurrency, at most one in flight per customer;
 * events that arrive meanwhile are coalesced into the next signal, in arrival
 * order (triggerEvents, so deploy workers before listeners; a lone event still
 * goes as triggerEvent). So an idle system adds no wait, and a loaded one sends
 * fewer, larger signals. A workflow believed running gets a plain signal, which
 * costs the server less than signal-with-start; "not found" falls back to it.
 * A message is acked only once Temporal accepted its signal, so a refusal means
 * redelivery (the workflow drops duplicates by event id). Non-key events are
 * acked and ignored (the emulator does not filter), invalid ones acked and
 * logged (the lake path quarantines them). Key events of forgotten customers (the suppression
 * list, stores/suppression.ts) are acked and counted, never signalled.
 */
import { Duration, type Message, type PubSub, type Subscription } from '@google-cloud/pubsub';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { LRUCache } from 'lru-cache';
import { fileURLToPath } from 'node:url';
import { closeGcpClients, createGcpClients, type GcpClients } from '../stores/clients.js';
import { createSuppressionList, type SuppressionList } from '../stores/suppression.js';
import type { Config } from '../core/config.js';
import { isTriggerType, TRIGGER_SUBSCRIPTION_FILTER } from '../core/events.js';
import { createEventValidator } from '../core/event-validator.js';
import type { Logger } from '../core/logger.js';
import { createRepeatedLog } from '../core/repeated-log.js';
import { createReasonTally } from '../core/reason-tally.js';
import { recordInvalidMessages } from './metrics.js';
import { logContractExtensions } from './contract-log.js';
import type { TriggerEvent } from '../core/realtime-features.js';
import { type TriggerSignal } from '../core/realtime-features.js';
import {
  RECLASSIFY_WORKFLOW,
  reclassifyWorkflowId,
  triggerEventSignal,
  triggerEventsSignal,
  type ReclassifyInput,
} from '../workflows/reclassify-messages.js';

export const LISTENER_DEFAULTS = {
  maxInFlight: 1_000,
  maxConcurrentSignals: 32,
  maxEventsPerSignal: 100,
  /** Event bytes per signal, well under Temporal's 2 MB payload limit. */
  maxSignalBytes: 512 * 1024,
} as const;

export interface TriggerListenerOptions {
  /** Messages in flight at most (Pub/Sub flow control), including those waiting for a signal. */
  maxInFlight?: number;
  /** Signals in flight at most. */
  maxConcurrentSignals?: number;
  /** Events coalesced into one signal at most. */
  maxEventsPerSignal?: number;
  /** Create the subscription (with its filter) when it is missing; the topic must exist or is created. */
  ensureSubscription?: boolean;
  /** Called after Temporal accepted a signal, once per event in it (benchmarks break latency down with it). */
  onSignalled?: (info: { eventId: string; customerId: string; receivedAt: number; signalledAt: number; publishTime: number }) => void;
}

export interface TriggerListenerStats {
  received: number;
  /** Events Temporal accepted (in `signals` signals). */
  signalled: number;
  signals: number;
  /** Events that went in a signal together with an earlier event of the same customer. */
  coalesced: number;
  ignored: number;
  invalid: number;
  /** Events whose signal failed (nacked for redelivery). */
  failed: number;
  /** Key events of suppressed (forgotten) customers: acked, never signalled. */
  suppressed: number;
}

export interface LatencySummary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface TriggerListener {
  readonly stats: TriggerListenerStats;
  /** Publish time to signal accepted, in ms, over the last 10,000 events. */
  latency(): LatencySummary;
  stop(): Promise<void>;
}

type ListenerConfig = Pick<Config, 'pubsub' | 'temporal' | 'ingest' | 'reclassify' | 'schedules'>;

export interface TriggerListenerDeps {
  pubsub: PubSub;
  client: Client;
  config: ListenerConfig;
  logger: Logger;
  /** Forgotten customers (stores/suppression.ts): their key events are acked and dropped. */
  suppression?: SuppressionList;
}

interface Item {
  message: Message;
  signal: TriggerSignal;
  receivedAt: number;
}

const LATENCY_WINDOW = 10_000;

export function summarize(values: readonly number[]): LatencySummary {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!);
  return { n: s.length, p50: at(50), p95: at(95), p99: at(99), max: s.at(-1) ?? NaN };
}

export async function createTriggerListener(deps: TriggerListenerDeps, options: TriggerListenerOptions = {}): Promise<TriggerListener> {
  const { pubsub, client, config } = deps;
  const log = deps.logger.child({ component: 'trigger-listener', subscription: config.pubsub.triggerSubscription });
  // Per-message failures share a cause (Temporal down, one bad producer): logged once, then counted.
  const repeated = createRepeatedLog(log);
  const opts = {
    ...LISTENER_DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  } as typeof LISTENER_DEFAULTS & TriggerListenerOptions;
  for (const k of ['maxInFlight', 'maxConcurrentSignals', 'maxEventsPerSignal'] as const) {
    const v = opts[k];
    if (!Number.isInteger(v) || v < 1) throw new Error(`trigger listener: expected ${k} to be a whole number >= 1, got ${v}`);
  }
  if (options.ensureSubscription ?? true) await ensureTriggerSubscription(pubsub, config);

  const validator = createEventValidator(config.ingest);
  // Bad input is reported as counts per reason over an interval (and as metrics), not per message.
  const invalidTally = createReasonTally(log, 'invalid events on the trigger subscription, acked (the lake path quarantines them)');
  const stats: TriggerListenerStats = {
    received: 0,
    signalled: 0,
    signals: 0,
    coalesced: 0,
    ignored: 0,
    invalid: 0,
    failed: 0,
    suppressed: 0,
  };
  const latencies: number[] = [];
  let latencyNext = 0;
  const subscription: Subscription = pubsub.subscription(config.pubsub.triggerSubscription, {
    flowControl: { maxMessages: opts.maxInFlight, allowExcessMessages: false },
    maxExtensionTime: Duration.from({ minutes: 10 }),
  });

  /** Events per customer waiting for a signal; a customer with a signal in flight is in `busy`, one waiting for a slot in `ready`. */
  const pending = new Map<string, Item[]>();
  const busy = new Set<string>();
  const ready = new Set<string>(); // insertion-ordered: first come, first signalled
  let active = 0;
  let onIdle: (() => void) | undefined;
  /** Customers whose workflow took a signal within its idle period: most likely still running. */
  const running = new LRUCache<string, true>({ max: 100_000, ttl: Math.max(1, config.reclassify.idleMinutes * 60_000) });

  function enqueue(customerId: string, item: Item): void {
    const list = pending.get(customerId);
    if (list) list.push(item);
    else pending.set(customerId, [item]);
    if (!busy.has(customerId)) ready.add(customerId);
    pump();
  }

  function take(customerId: string): Item[] {
    const list = pending.get(customerId)!;
    let bytes = 0;
    let n = 0;
    while (n < list.length && n < opts.maxEventsPerSignal) {
      bytes += list[n]!.message.data.length;
      if (n > 0 && bytes > opts.maxSignalBytes) break;
      n += 1;
    }
    const items = list.splice(0, n);
    if (list.length === 0) pending.delete(customerId);
    return items;
  }

  function pump(): void {
    while (active < opts.maxConcurrentSignals && ready.size > 0) {
      const customerId = ready.values().next().value!;
      ready.delete(customerId);
      const items = take(customerId);
      busy.add(customerId);
      active += 1;
      void send(customerId, items).finally(() => {
        active -= 1;
        busy.delete(customerId);
        if (pending.has(customerId)) ready.add(customerId);
        pump();
        if (active === 0 && pending.size === 0) onIdle?.();
      });
    }
  }

  /** A plain signal to a workflow believed running; false when it has ended since (not found). */
  async function signalRunning(workflowId: string, items: Item[]): Promise<boolean> {
    const handle = client.workflow.getHandle(workflowId);
    try {
      if (items.length === 1) await handle.signal(triggerEventSignal, items[0]!.signal);
      else await handle.signal(triggerEventsSignal, { events: items.map((i) => i.signal) });
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  /** Signal-with-start: the customer's workflow is started if it is not running. */
  async function signalWithStart(customerId: string, workflowId: string, items: Item[]): Promise<void> {
    const args: [ReclassifyInput] = [{ customerId, idleMinutes: config.reclassify.idleMinutes }];
    const base = { workflowId, taskQueue: config.temporal.taskQueue, args, searchAttributes: { CustomerId: [customerId] } };
    if (items.length === 1) {
      await client.workflow.signalWithStart(RECLASSIFY_WORKFLOW, { ...base, signal: triggerEventSignal, signalArgs: [items[0]!.signal] });
    } else {
      await client.workflow.signalWithStart(RECLASSIFY_WORKFLOW, {
        ...base,
        signal: triggerEventsSignal,
        signalArgs: [{ events: items.map((i) => i.signal) }],
      });
    }
  }

  async function send(customerId: string, items: Item[]): Promise<void> {
    const workflowId = reclassifyWorkflowId(customerId, config.schedules.prefix);
    try {
      const taken = running.has(customerId) && (await signalRunning(workflowId, items));
      if (!taken) await signalWithStart(customerId, workflowId, items);
      running.set(customerId, true);
    } catch (err) {
      running.delete(customerId);
      stats.failed += items.length;
      // The client's message is generic ("Failed to signalWithStart Workflow"); the server's reason is the cause.
      const error = err instanceof Error ? err.message : String(err);
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : undefined;
      repeated.log(
        'error',
        `signal failed: ${error}: ${cause ?? ''}`,
        { customerId, events: items.length, error, cause },
        'signal failed; messages nacked for redelivery',
      );
      for (const i of items) i.message.nack();
      return;
    }
    const signalledAt = Date.now();
    stats.signals += 1;
    stats.signalled += items.length;
    stats.coalesced += items.length - 1;
    for (const i of items) {
      i.message.ack();
      const publishTime = i.message.publishTime.getTime();
      latencies[latencyNext] = signalledAt - publishTime;
      latencyNext = (latencyNext + 1) % LATENCY_WINDOW;
      options.onSignalled?.({ eventId: i.signal.event.event_id, customerId, receivedAt: i.receivedAt, signalledAt, publishTime });
    }
  }

  function handle(message: Message): void {
    const receivedAt = Date.now();
    stats.received += 1;
    const typeAttr = message.attributes.type;
    // Cheap pre-check on the attribute; the body decides below.
    if (typeAttr !== undefined && !isTriggerType(typeAttr)) {
      stats.ignored += 1;
      message.ack();
      return;
    }
    const checked = validator.validate({
      data: message.data,
      attributes: message.attributes,
      publishTime: message.publishTime,
      messageId: message.id,
    });
    if (!checked.ok) {
      stats.invalid += 1;
      const codes = [...new Set(checked.reasons.map((r) => r.code))];
      invalidTally.add(codes, { messageId: message.id, details: checked.reasons });
      recordInvalidMessages('triggers', Object.fromEntries(codes.map((c) => [c, 1])));
      message.ack();
      return;
    }
    const event = checked.event;
    if (event.type !== 'purchase' && event.type !== 'profile_update') {
      stats.ignored += 1;
      message.ack();
      return;
    }
    const item: Item = { message, receivedAt, signal: { event: event as TriggerEvent, publishTime: message.publishTime.toISOString() } };
    if (deps.suppression === undefined) {
      enqueue(event.customer_id, item);
      return;
    }
    // Resolved in arrival order (one cached list, or one reload every check waits for).
    void deps.suppression
      .filter([item], (i) => i.signal.event.customer_id)
      .then(({ dropped }) => {
        if (dropped === 0) return enqueue(event.customer_id, item);
        // Counted, not logged: the customer asked to be forgotten.
        stats.suppressed += 1;
        message.ack();
      })
      .catch((err: unknown) => {
        repeated.log(
          'error',
          `suppression list unreadable: ${String(err)}`,
          { error: String(err) },
          'suppression list unreadable; key event nacked',
        );
        message.nack();
      });
  }

  subscription.on('message', (message: Message) => {
    try {
      handle(message);
    } catch (err) {
      repeated.log(
        'error',
        `handling failed: ${String(err)}`,
        { messageId: message.id, error: String(err) },
        'trigger message handling failed; nacked',
      );
      message.nack();
    }
  });
  subscription.on('error', (err: Error) => {
    // The client library reconnects on retryable errors.
    repeated.log('error', `subscription error: ${err.message}`, { error: err.message }, 'trigger subscription error');
  });
  logContractExtensions(config, log);
  log.info(
    { taskQueue: config.temporal.taskQueue, maxConcurrentSignals: opts.maxConcurrentSignals, maxEventsPerSignal: opts.maxEventsPerSignal },
    'trigger listener started',
  );

  return {
    stats,
    latency: () => summarize(latencies),
    async stop() {
      subscription.removeAllListeners('message');
      // Events already taken are signalled (and acked) before the stream closes.
      if (active > 0 || pending.size > 0) await new Promise<void>((resolve) => (onIdle = resolve));
      await subscription.close();
      repeated.close();
      invalidTally.close();
      log.info({ ...stats, publishToSignalMs: summarize(latencies) }, 'trigger listener stopped');
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
  clients?: Pick<GcpClients, 'pubsub' | 'firestore'>,
  options: TriggerListenerOptions = {},
): Promise<{ stop(): Promise<void>; stats: TriggerListenerStats }> {
  const own = clients === undefined ? createGcpClients(config) : undefined;
  const { pubsub, firestore } = clients ?? own!;
  const suppression = createSuppressionList({ firestore, config, logger });
  const listener = await createTriggerListener({ pubsub, client, config, logger, suppression }, options);
  return {
    stats: listener.stats,
    async stop() {
      await listener.stop();
      suppression.close();
      if (own) await closeGcpClients(own);
    },
  };
}

// `npm run triggers`: the listener on its own, until SIGINT/SIGTERM.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { Command } = await import('commander');
  const { exitUsage, wholeNumber } = await import('../scripts/lib/cli.js');
  const program = new Command('npm run triggers')
    .description(
      "Runs the trigger listener on its own (npm start runs it beside the workers): key events on SEGFLOW_TRIGGER_SUBSCRIPTION become signals to the customers' " +
        'reclassifyCustomer workflows (signal-with-start: started when not running) (task queue TEMPORAL_TASK_QUEUE), until SIGINT/SIGTERM; ' +
        'on stop it logs its totals and the publish -> signal latency.',
    )
    .option('--max-in-flight <n>', 'Pub/Sub messages held at most', wholeNumber(1), LISTENER_DEFAULTS.maxInFlight)
    .option('--max-concurrent-signals <n>', 'signals in flight at most', wholeNumber(1), LISTENER_DEFAULTS.maxConcurrentSignals)
    .option(
      '--max-events-per-signal <n>',
      "a customer's events coalesced into one signal at most",
      wholeNumber(1),
      LISTENER_DEFAULTS.maxEventsPerSignal,
    )
    .addHelpText('after', '\nOther settings come from the environment (see docs/configuration.md).')
    .showHelpAfterError()
    .exitOverride(exitUsage);
  program.parse();
  const options: TriggerListenerOptions = program.opts<{ maxInFlight: number; maxConcurrentSignals: number; maxEventsPerSignal: number }>();
  const { loadConfigOrExit } = await import('../core/config.js');
  const { createLogger } = await import('../core/logger.js');
  const { createTemporalClient } = await import('./client.js');
  const { installRuntime } = await import('./runtime.js');
  const config = loadConfigOrExit();
  const logger = createLogger({ level: config.log.level, name: 'segflow-triggers' });
  installRuntime({ logger });
  const client = await createTemporalClient(config, { native: true });
  const listener = await startTriggerListener(config, logger, client, undefined, options);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      logger.info({ signal: sig }, 'stopping the trigger listener');
      void listener
        .stop()
        .then(() => client.connection.close())
        .then(() => process.exit(0));
    });
  }
}

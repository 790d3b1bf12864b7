/**
 * npm start — the whole system: the local stack (installed on first use, unless the
 * configuration points elsewhere), the schedules applied, continuous ingestion, and the worker
 * (with the metrics), the trigger listener and the profile API as supervised processes of their
 * own (scripts/lib/supervisor.ts), until Ctrl-C. With --demo: demo traffic,
 * then an immediate hourly pipeline and segmentation run, so the UI shows completed runs and
 * the API returns segments within minutes.
 */
import type { Client } from '@temporalio/client';
import { Command, InvalidArgumentError } from 'commander';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createIngestActivities } from '../activities/ingest.js';
import { DOCS_PATH, EXPLORER_PATH } from '../api/server.js';
import { closeGcpClients, createGcpClients, type GcpClients } from '../stores/clients.js';
import { metricsPorts } from '../workers/metrics.js';
import { logSupervisorEvent, relayChildLine } from './lib/process-log.js';
import { supervise, type SupervisedProcess } from './lib/supervisor.js';
import { usesLocalStack, type Config } from '../core/config.js';
import { loadSegflowConfig } from '../workers/segmentation-config.js';
import { createLogger, resolveLogFormat, type Logger } from '../core/logger.js';
import { generateEvents, makePopulation } from '../demo/personas.js';
import { INTERVAL_PERIOD_MS } from '../dags/dsl.js';
import { dagRegistry } from '../dags/index.js';
import { applyConfiguredSchedules, formatApplyResult } from '../schedules/apply.js';
import { HOURLY_PIPELINE_DAG, NIGHTLY_SEGMENTATION_DAG } from '../core/dag-ids.js';
import { ensureIngestion } from '../schedules/definitions.js';
import { intervalStartingAt, startDagRun, type OpsContext } from '../schedules/ops-lib.js';
import { ingestStatsQuery } from '../workflows/ingest-messages.js';
import { createTemporalClient } from '../workers/client.js';
import { eventMessage, openTopic, publishAll } from './lib/publisher.js';
import { STACK_DIR, down, up } from './stack-lib.js';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a whole number above 0, found ${JSON.stringify(v)}`);
  return n;
}

const program = new Command('start')
  .description(
    'Run segflow: the local stack when configured for it, the worker, schedules, ingestion, trigger listener, profile API and metrics, until Ctrl-C.',
  )
  .option('--keep-stack', 'leave the local stack running on exit (it is stopped by default if this command started it)')
  .option('--no-stack', 'never start the local stack, even when the configuration points at loopback')
  .option('--demo', 'publish demo traffic, then run the hourly pipeline and the segmentation at once')
  .option('--demo-customers <n>', 'demo population size (about 33 events each)', positiveInt, 300)
  .option('--no-api', 'do not serve the profile API')
  .option('--no-schedules', 'do not apply the schedules (the worker still runs scheduled workflows)')
  .showHelpAfterError();
program.parse();
const opts = program.opts<{
  keepStack?: boolean;
  stack: boolean;
  demo?: boolean;
  demoCustomers: number;
  api: boolean;
  schedules: boolean;
}>();

process.on('uncaughtException', (err) => {
  console.error(`segflow: ${err.message}`);
  process.exit(1);
});

const t0 = Date.now();
const config = loadSegflowConfig();
// A person at a terminal reads short lines; the full JSON record goes to a file beside the stack's logs.
const logFormat = resolveLogFormat(config.log.format, {
  isTTY: process.stdout.isTTY === true,
  ci: !['', '0', 'false', undefined].includes(process.env.CI),
});
const logFile = path.join(STACK_DIR, 'logs', 'segflow.log');
const logger = createLogger({
  level: config.log.level,
  name: 'segflow',
  ...(logFormat === 'pretty' ? { pretty: { file: logFile, fileLevel: config.log.fileLevel } } : {}),
});
if (logFormat === 'pretty') {
  const shown = path.relative(process.cwd(), logFile);
  console.log(`segflow: full JSON log (${config.log.fileLevel} and above) in ${shown.startsWith('..') ? logFile : shown}`);
}

/** What Ctrl-C stops, in reverse order of start. */
const stoppers: { name: string; stop: () => Promise<unknown> }[] = [];
let stopping = false;
let stopRequestedAt = 0;
/**
 * Ctrl-C in a terminal signals the whole process group, and npm and scripts/run.mjs forward the
 * signal too, so one keypress can arrive here two or three times within a few milliseconds.
 * Only a signal this long after the first counts as the operator asking to stop at once.
 */
const SECOND_SIGNAL_AFTER_MS = 1_000;
/** Each part gets this long to stop; a part that hangs (an activity ignoring cancellation) is reported and left. */
const STOP_TIMEOUT_MS = 20_000;
async function stop(signal: string): Promise<void> {
  if (stopping) {
    if (Date.now() - stopRequestedAt < SECOND_SIGNAL_AFTER_MS) return;
    console.error('segflow: stopping now without waiting (second signal)');
    process.exit(130);
  }
  stopping = true;
  stopRequestedAt = Date.now();
  console.log('stopping segflow (Ctrl-C again to stop at once)...');
  logger.info({ signal }, 'stopping segflow');
  for (const { name, stop: fn } of stoppers.reverse()) {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`did not stop within ${STOP_TIMEOUT_MS / 1000} s`)), STOP_TIMEOUT_MS);
        }),
      ]);
      logger.info({ component: name }, 'stopped');
    } catch (err) {
      logger.warn({ component: name, error: err instanceof Error ? err.message : String(err) }, 'could not stop cleanly');
    } finally {
      clearTimeout(timer);
    }
  }
  console.log('segflow stopped');
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));

let startedServices: string[] = [];
if (opts.stack && usesLocalStack(config)) {
  const stackLog = logger.child({ component: 'stack' });
  // Install progress matters (a first install takes minutes); each service's pid and log file is detail, summed up below.
  const stack = await up((line) => (line.startsWith('starting ') ? stackLog.debug(line) : stackLog.info(line)));
  startedServices = stack.started;
  const list = (names: string[]) => (names.length === 0 ? 'none' : names.join(','));
  stackLog.info(
    {
      started: list(stack.started),
      alreadyRunning: list(stack.alreadyRunning),
      external: list(stack.external),
      logs: path.join(STACK_DIR, 'logs'),
    },
    'local stack up',
  );
  if (startedServices.length > 0 && !opts.keepStack) {
    stoppers.push({ name: 'stack', stop: () => down((line) => stackLog.info(line), startedServices) });
  }
}
// The stack wrote .stack/env on first start: read the configuration again so it applies.
const runtimeConfig = loadSegflowConfig();

const clients = createGcpClients(runtimeConfig);
stoppers.push({ name: 'GCP clients', stop: () => closeGcpClients(clients) });
const client = await createTemporalClient(runtimeConfig);
stoppers.push({ name: 'temporal client', stop: () => client.connection.close() });

if (opts.schedules) {
  const applied = await applyConfiguredSchedules(client, runtimeConfig);
  console.log(`schedules:\n${formatApplyResult(applied)}`);
}
// Topic, subscriptions and bucket exist before anything publishes: Pub/Sub delivers a
// message only to subscriptions that existed when it was published.
await createIngestActivities({ pubsub: clients.pubsub, storage: clients.storage, config: runtimeConfig, logger }).ensureIngestResources();
const ingestion = await ensureIngestion(client, runtimeConfig, logger);

// The worker, the trigger listener and the profile API each in a process of its own (the same
// entry points production runs alone), so a saturated worker neither slows the API nor delays a query.
const processes: SupervisedProcess[] = [
  { name: 'worker', entry: 'workers/main.ts' },
  { name: 'listener', entry: 'workers/trigger-listener.ts' },
  ...(opts.api ? [{ name: 'api', entry: 'api/main.ts' }] : []),
];
const supervisor = supervise(processes, {
  onLine: (line) => relayChildLine(logger, line),
  onEvent: (event) => logSupervisorEvent(logger, event),
});
stoppers.push({ name: 'processes', stop: () => supervisor.stop() });
const apiUrl = opts.api ? `http://127.0.0.1:${runtimeConfig.api.port}` : undefined;
if (apiUrl !== undefined) await waitForHealth(apiUrl, 60_000);

const ui = `${runtimeConfig.temporal.uiUrl}/namespaces/${encodeURIComponent(runtimeConfig.temporal.namespace)}`;
const ports = metricsPorts(runtimeConfig);
console.log(`
segflow is running (started in ${((Date.now() - t0) / 1000).toFixed(1)} s)
  Temporal UI   ${ui}/workflows
  DAG runs      ${ui}/workflows?query=${encodeURIComponent(`DagId = '${HOURLY_PIPELINE_DAG}'`)}
  schedules     ${ui}/schedules
  ingestion     ${ingestion.workflowId} (${ingestion.started ? 'started' : 'already running'})
  profile API   ${apiUrl ?? 'off (--no-api)'}${apiUrl === undefined ? '' : `\n  explorer      ${apiUrl}${EXPLORER_PATH}/ (sign in with an API token)\n  API docs      ${apiUrl}${DOCS_PATH}`}
  metrics       ${ports === undefined ? 'off (SEGFLOW_METRICS_PORT=0)' : `http://127.0.0.1:${ports.temporal}/metrics (Temporal SDK), http://127.0.0.1:${ports.segflow}/metrics (segflow)`}
  task queue    ${runtimeConfig.temporal.taskQueue}
  ops           npm run ops -- status
Press Ctrl-C to stop.
`);

if (opts.demo) {
  runDemo(runtimeConfig, logger, client, clients, apiUrl).catch((err: unknown) => {
    logger.error({ error: err instanceof Error ? err.message : String(err) }, 'demo failed; segflow keeps running');
  });
}

// Runs until a signal: the supervisor restarts a process that dies.
await new Promise<never>(() => undefined);

/** Waits until the API answers /healthz (any status: it answers 503 while Firestore is down), or the time runs out. */
async function waitForHealth(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !stopping) {
    const answered = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) }).then(
      () => true,
      () => false,
    );
    if (answered) return;
    await sleep(250);
  }
  logger.warn({ url, timeoutMs }, 'the profile API did not answer /healthz in time; the supervisor keeps trying');
}

async function runDemo(cfg: Config, log: Logger, temporal: Client, clients: GcpClients, api: string | undefined): Promise<void> {
  const demoLog = log.child({ component: 'demo' });
  const ops: OpsContext = { client: temporal, config: cfg };
  const ingestHandle = temporal.workflow.getHandle(ingestion.workflowId);
  const ingestedSoFar = async () => {
    const c = await ingestHandle.query(ingestStatsQuery);
    return c.written + c.quarantined;
  };
  const baseline = await ingestedSoFar().catch(() => 0);

  const now = new Date();
  const population = makePopulation(opts.demoCustomers, 42);
  const events = [
    ...generateEvents(population, { from: new Date(now.getTime() - 90 * 86_400_000), to: now, seed: 42, eventsPerCustomer: 30 }),
  ];
  const topic = await openTopic(clients.pubsub, cfg.pubsub.topic);
  demoLog.info({ events: events.length, customers: population.length }, 'publishing demo traffic');
  await publishAll(topic, events.map(eventMessage), { total: events.length });

  // The hourly pipeline loads an arrival hour: wait until ingestion has landed the demo events.
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && (await ingestedSoFar().catch(() => baseline)) < baseline + events.length) await sleep(1_000);
  demoLog.info({ ingested: (await ingestedSoFar().catch(() => baseline)) - baseline }, 'demo traffic ingested');

  const runs: { dagId: string; startMs: number }[] = [];
  const hourNow = Date.now() - (Date.now() % INTERVAL_PERIOD_MS.hourly);
  runs.push({ dagId: HOURLY_PIPELINE_DAG, startMs: hourNow }); // the arrival hour the demo events landed in
  const dayNow = Date.now() - (Date.now() % INTERVAL_PERIOD_MS.daily);
  runs.push({ dagId: NIGHTLY_SEGMENTATION_DAG, startMs: dayNow - INTERVAL_PERIOD_MS.daily }); // the last complete day

  for (const { dagId, startMs } of runs) {
    const dag = dagRegistry.get(dagId);
    if (dag === undefined) {
      demoLog.warn({ dagId }, 'DAG not registered in dags/index.ts; skipping its demo run');
      continue;
    }
    const interval = intervalStartingAt(dag, startMs);
    const started = await startDagRun(ops, dagId, interval);
    demoLog.info({ workflowId: started.workflowId }, 'demo run started');
    try {
      await temporal.workflow.getHandle(started.workflowId, started.runId).result();
      console.log(`demo: ${started.workflowId} completed (${((Date.now() - t0) / 1000).toFixed(0)} s after start)`);
    } catch (err) {
      if (stopping) return;
      console.log(
        `demo: ${started.workflowId} failed: ${err instanceof Error ? err.message : String(err)} (see npm run ops -- tasks ${started.workflowId})`,
      );
      return;
    }
  }
  if (api !== undefined) {
    const customer = population[0]?.customer_id ?? 'cust-000000';
    const token = cfg.env === 'local' ? (cfg.api.tokens[0] ?? '$TOKEN') : '$TOKEN';
    const response = await fetch(`${api}/v1/customers/${customer}/profile`, { headers: { authorization: `Bearer ${token}` } }).catch(
      () => undefined,
    );
    console.log(
      `demo: GET ${api}/v1/customers/${customer}/profile -> ${response?.status ?? 'no answer'} ${response ? (await response.text()).slice(0, 300) : ''}`,
    );
    console.log(`      try: curl -H 'Authorization: Bearer ${token}' ${api}/v1/customers/${customer}/profile`);
  }
  console.log(`demo ready ${((Date.now() - t0) / 1000).toFixed(0)} s after start`);
}

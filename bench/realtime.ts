/**
 * npm run bench:realtime — the real-time path end to end, laid out as deployed: the profile
 * API, a worker and the trigger listener run as child processes with their normal entry points;
 * this process generates the load and observes, on resources suffixed with this run's id.
 *
 * Part 1: an open-loop load (requests leave on schedule, so a slow server shows as latency, not
 * as a lower rate) on GET /v1/customers/:id/profile, then the same schedule of bare Firestore
 * reads as the baseline; the API's rate limit is off so one load generator is not throttled.
 * Part 2: purchases that move customers from "Occasional" to "VIP" (after a warm-up purchase
 * that starts their workflows), timed from publish until the API answers with the event and its
 * segment; the worker's "customer reclassified" log line says when to ask. With --mixed, part
 * 1's load runs during part 2. The breakdown (listener, Firestore commit, API, workflow tasks)
 * is printed with the load average, because the machine is shared with what is measured.
 */
import { Command, Option } from 'commander';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { closeGcpClients, createGcpClients } from '../stores/clients.js';
import { createProfileStore } from '../stores/profiles.js';
import { loadConfigOrExit } from '../core/config.js';
import { encodeEvent } from '../core/events.js';
import { createLogger } from '../core/logger.js';
import type { Profile } from '../core/profile.js';
import { temporalConnectionSettings } from '../core/temporal-connection.js';
import { wholeNumber } from '../scripts/lib/cli.js';
import { printTable, type Cell } from '../scripts/lib/table.js';
import { freePort } from '../scripts/stack-lib.js';
import { installCurrentModel, OCCASIONAL, purchaseEvent, twoSegmentModel, VIP } from '../test/support/realtime-fixtures.js';
import { ensureTriggerSubscription, LISTENER_DEFAULTS, summarize, type LatencySummary } from '../workers/trigger-listener.js';
import { reclassifyStateQuery, reclassifyWorkflowId } from '../workflows/reclassify-messages.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const program = new Command('bench:realtime')
  .description(
    'Event -> visible segment latency through the profile API, and API latency under load beside a bare Firestore read.\n' +
      'The API, a worker and the trigger listener run as child processes (their normal entry points); this process generates the load.\n' +
      'Runs against the stack the environment names (TEMPORAL_ADDRESS, FIRESTORE_EMULATOR_HOST, ...; default the local stack).',
  )
  .option('--rate <n>', 'purchase events per second', wholeNumber(1), 100)
  .option('--seconds <n>', 'seconds of event publishing', wholeNumber(1), 20)
  .option('--customers <n>', 'customers the events go to (round robin)', wholeNumber(1), 200)
  .option('--api-rps <n>', 'profile API requests per second', wholeNumber(1), 500)
  .option('--api-seconds <n>', 'seconds of API load (and of the Firestore baseline)', wholeNumber(1), 10)
  .option('--api-warmup-seconds <n>', 'untimed seconds of the same load before each of the two', wholeNumber(0), 2)
  .option(
    '--poll-ms <n>',
    'after the write is seen, how often the API is asked until it shows it (a coarser poll can only overstate the latency, by up to this much; a finer one costs the machine more CPU)',
    wholeNumber(1),
    20,
  )
  .option('--mixed', 'also run the API load during the event phase and report it separately', false)
  .addOption(
    new Option('--only <part>', 'run one part: api (API under load and the Firestore baseline) or events (event -> visible)').choices([
      'api',
      'events',
    ]),
  )
  .option(
    '--max-concurrent-signals <n>',
    `the trigger listener's signals in flight at most`,
    wholeNumber(1),
    LISTENER_DEFAULTS.maxConcurrentSignals,
  )
  .option('--samples <n>', 'workflow histories read afterwards to break the worker side down', wholeNumber(0), 20)
  .option('--logs <dir>', 'where the child processes write their output (default /tmp/bench-realtime-<run id>)')
  .showHelpAfterError();
program.parse();
const opts = program.opts<{
  rate: number;
  seconds: number;
  customers: number;
  apiRps: number;
  apiSeconds: number;
  apiWarmupSeconds: number;
  pollMs: number;
  mixed: boolean;
  only?: 'api' | 'events';
  maxConcurrentSignals: number;
  samples: number;
  logs?: string;
}>();

const TOKEN = 'bench-realtime-token-0123456789';
const id = randomUUID().slice(0, 8);
const MODEL_VERSION = `bench-rt-${id}`;
const logDir = opts.logs ?? `/tmp/bench-realtime-${id}`;

const env: Record<string, string> = {
  SEGFLOW_EVENTS_TOPIC: `bench-rt-events-${id}`,
  SEGFLOW_TRIGGER_SUBSCRIPTION: `bench-rt-triggers-${id}`,
  SEGFLOW_LAKE_BUCKET: `bench-rt-lake-${id}`,
  SEGFLOW_FIRESTORE_PROFILES: `bench_rt_profiles_${id}`,
  SEGFLOW_DATASET_MARTS: `bench_rt_marts_${id}`,
  SEGFLOW_SCHEDULE_PREFIX: `bench-rt-${id}.`,
  TEMPORAL_TASK_QUEUE: `bench-realtime-${id}`,
  SEGFLOW_RECLASSIFY_IDLE_MINUTES: '10',
  SEGFLOW_API_TOKENS: TOKEN,
  SEGFLOW_METRICS_PORT: '0',
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
};
const config = loadConfigOrExit({ ...process.env, ...env });

const fmt = (ms: number) => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : 'n/a');
const load = () =>
  `load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;
const latencyRow = (name: string, s: LatencySummary, note = ''): Cell[] => [
  name,
  fmt(s.p50),
  fmt(s.p95),
  fmt(s.p99),
  fmt(s.max),
  s.n,
  note,
];
const printLatencies = (rows: readonly Cell[][]) =>
  printTable(['path', 'p50', 'p95', 'p99', 'max', 'n', ''], rows, {
    indent: 2,
    align: ['left', 'right', 'right', 'right', 'right', 'right'],
  });

/** Runs `task` `rps` times a second for `seconds`, on schedule; returns per-call latencies and the achieved rate. */
async function openLoop(rps: number, seconds: number, task: (i: number) => Promise<void>) {
  const total = rps * seconds;
  const latencies: number[] = [];
  let errors = 0;
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rps) + 1);
    for (; sent < due; sent++) {
      const i = sent;
      const start = performance.now();
      pending.push(
        task(i).then(
          () => void latencies.push(performance.now() - start),
          () => void (errors += 1),
        ),
      );
    }
    // Sleep until the next one is due rather than on a fixed 1 ms tick: this process shares the
    // machine with what it measures, so its own wake-ups count.
    const nextAt = t0 + (sent / rps) * 1000;
    await new Promise((r) => setTimeout(r, Math.max(0, nextAt - performance.now())));
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - t0) / 1000;
  return { ...summarize(latencies), errors, rps: total / elapsed };
}

interface Child {
  name: string;
  proc: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

/** A child process on its normal entry point; output goes to <logDir>/<name>.log, stdout lines are also kept. */
function startChild(
  name: string,
  entry: string,
  args: string[],
  extraEnv: Record<string, string> = {},
  onLine?: (line: string) => void,
): Child {
  const out = createWriteStream(path.join(logDir, `${name}.log`));
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, entry), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    lines.push(l);
    out.write(`${l}\n`);
    onLine?.(l);
  });
  proc.stderr!.pipe(out);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { name, proc, lines, exited };
}

async function stopChild(child: Child, timeoutMs = 15_000): Promise<void> {
  if (child.proc.exitCode !== null) return;
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), timeoutMs);
  await child.exited;
  clearTimeout(timer);
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number, children: Child[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = children.find((c) => c.proc.exitCode !== null);
    if (dead)
      throw new Error(`${dead.name} exited with code ${dead.proc.exitCode} while waiting for ${what}; see ${logDir}/${dead.name}.log`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; see the logs in ${logDir}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** CPU seconds a process has used (user + system), from /proc; undefined where there is no /proc. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return undefined;
  }
}

/** The pid listening on a local TCP port (Linux /proc), to account the servers' CPU too. */
function listenerPid(port: number): number | undefined {
  try {
    const inodes = new Set<string>();
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      for (const row of readFileSync(file, 'utf8').split('\n').slice(1)) {
        const cols = row.trim().split(/\s+/);
        if (cols[3] === '0A' && Number.parseInt(cols[1]!.split(':')[1]!, 16) === port) inodes.add(cols[9]!);
      }
    }
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      let fds: string[] = [];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
          if (m && inodes.has(m[1]!)) return Number(pid);
        } catch {
          // gone meanwhile
        }
      }
    }
  } catch {
    // no /proc
  }
  return undefined;
}

/** Signal -> workflow task started -> completed, from the histories of sample workflows. */
async function workerBreakdown(client: Client, ids: string[]) {
  const signalToStart: number[] = [];
  const taskRun: number[] = [];
  let events = 0;
  let steps = 0;
  let historyEvents = 0;
  let workflowTasks = 0;
  let timers = 0;
  let markers = 0;
  let signals = 0;
  for (const customerId of ids) {
    const handle = client.workflow.getHandle(reclassifyWorkflowId(customerId, config.schedules.prefix));
    const [history, state] = await Promise.all([handle.fetchHistory(), handle.query(reclassifyStateQuery).catch(() => undefined)]);
    if (state) {
      events += state.totals.events;
      steps += state.totals.steps;
    }
    const list = history.events ?? [];
    historyEvents += list.length;
    const ms = (t: unknown) => {
      const ts = t as { seconds?: { toNumber(): number } | number; nanos?: number } | null | undefined;
      const s = typeof ts?.seconds === 'number' ? ts.seconds : (ts?.seconds?.toNumber() ?? 0);
      return s * 1000 + (ts?.nanos ?? 0) / 1e6;
    };
    let firstPendingSignal: number | undefined;
    let started: number | undefined;
    for (const e of list) {
      const t = ms(e.eventTime);
      if (e.workflowExecutionSignaledEventAttributes) {
        signals += 1;
        firstPendingSignal ??= t;
      } else if (e.workflowTaskStartedEventAttributes) {
        started = t;
        workflowTasks += 1;
        if (firstPendingSignal !== undefined) signalToStart.push(t - firstPendingSignal);
        firstPendingSignal = undefined;
      } else if (e.workflowTaskCompletedEventAttributes && started !== undefined) {
        taskRun.push(t - started);
        started = undefined;
      } else if (e.timerStartedEventAttributes) timers += 1;
      else if (e.markerRecordedEventAttributes) markers += 1;
    }
  }
  return {
    signalToStart: summarize(signalToStart),
    taskRun: summarize(taskRun),
    events,
    steps,
    historyEvents,
    workflowTasks,
    timers,
    markers,
    signals,
  };
}

/** A step the worker logged ("customer reclassified"): whose profile, its purchase count and commit time. */
interface StepNotice {
  customerId: string;
  frequency: number;
  committedAt: number;
}

/** The worker's "customer reclassified" log lines that wrote a profile, as they come. */
class StepNotices {
  private readonly listeners = new Set<(notice: StepNotice) => void>();
  emit(line: string): void {
    if (this.listeners.size === 0 || !line.includes('"customer reclassified"')) return;
    try {
      const { customerId, frequency, committedAt } = JSON.parse(line) as {
        customerId?: unknown;
        frequency?: unknown;
        committedAt?: unknown;
      };
      if (typeof customerId !== 'string' || typeof frequency !== 'number' || typeof committedAt !== 'string') return;
      const notice = { customerId, frequency, committedAt: Date.parse(committedAt) };
      for (const l of this.listeners) l(notice);
    } catch {
      // not a JSON log line
    }
  }
  on(listener: (notice: StepNotice) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

async function main(): Promise<void> {
  mkdirSync(logDir, { recursive: true });
  const logger = createLogger({ level: config.log.level, name: 'bench-realtime' });
  const clients = createGcpClients(config);
  const { pubsub, storage, firestore } = clients;
  const connection = await Connection.connect(temporalConnectionSettings(config));
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const collection = firestore.collection(config.firestore.profiles);
  const customers = opts.customers;
  const events = opts.rate * opts.seconds;
  const children: Child[] = [];
  let listenerChild: Child | undefined;
  const workerSteps = new StepNotices();
  try {
    console.log(
      `bench:realtime — ${events} purchases at ${opts.rate}/s over ${customers} customers; API ${opts.apiRps} req/s for ${opts.apiSeconds} s; ` +
        `Temporal ${config.temporal.address}; child logs in ${logDir}`,
    );
    console.log(`  start: ${load()} (2 cores, shared)`);
    await installCurrentModel(storage, config.lake.bucket, twoSegmentModel(MODEL_VERSION));
    const ids = Array.from({ length: customers }, (_, i) => `bench-${id}-${i}`);
    const asOf = new Date(Date.now() - 3_600_000).toISOString();
    const seed = (customerId: string): Profile => ({
      customer_id: customerId,
      segment_id: OCCASIONAL.id,
      segment_label: OCCASIONAL.label,
      model_version: MODEL_VERSION,
      features: { frequency: 1, monetary: 30, recency_days: 30, r_score: 3, f_score: 1, m_score: 1 },
      rfm: { recency_days: 30, frequency: 1, monetary: 30, r_score: 3, f_score: 1, m_score: 1 },
      demographics: {},
      updated_at: asOf,
      source_event_time: asOf,
    });
    const seeded = await createProfileStore({ firestore, config, logger }).writeProfilesBulk(ids.map(seed));
    console.log(`  seeded ${seeded.created} profiles in ${seeded.durationMs} ms`);
    await pubsub.topic(config.pubsub.topic).get({ autoCreate: true });
    await ensureTriggerSubscription(pubsub, config);

    // ---- the deployment: API, worker, trigger listener, each in its own process
    const apiPort = await freePort();
    const api = startChild('api', 'api/main.ts', ['--port', String(apiPort), '--rate-limit', '0']);
    // The worker logs each step at info ("customer reclassified"); the event phase uses those lines
    // to know when to look (see part 2).
    const worker = startChild('worker', 'workers/main.ts', [], { LOG_LEVEL: 'info' }, (l) => workerSteps.emit(l));
    children.push(api, worker);
    const base = `http://127.0.0.1:${apiPort}`;
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    // node:http rather than fetch: the client's own overhead is part of every figure, so keep it small.
    const get = (customerId: string) =>
      new Promise<{ segment_label: string; rfm: { frequency: number } }>((resolve, reject) => {
        const req = request(
          `${base}/v1/customers/${customerId}/profile`,
          { agent, headers: { authorization: `Bearer ${TOKEN}` } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
              else resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { segment_label: string; rfm: { frequency: number } });
            });
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end();
      });
    const healthy = () =>
      new Promise<boolean>((resolve) => {
        const req = request(`${base}/healthz`, { agent }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        });
        req.on('error', () => resolve(false));
        req.end();
      });
    await waitFor('the profile API to answer /healthz', healthy, 60_000, children);
    // The worker bundles its workflows at start (seconds of CPU): wait until it polls, so that is not measured.
    const polling = async () => {
      const r = await connection.workflowService.describeTaskQueue({
        namespace: config.temporal.namespace,
        taskQueue: { name: config.temporal.taskQueue },
        taskQueueType: 1, // workflow tasks
      });
      return (r.pollers?.length ?? 0) > 0;
    };
    await waitFor('the worker to poll its task queue', polling, 120_000, children);

    // CPU per process over a phase: this process, the children, and the servers (found by their ports).
    const portOf = (hostPort: string | undefined) => Number(hostPort?.split(':').at(-1));
    const servers = [
      { name: 'Temporal server*', pid: listenerPid(portOf(config.temporal.address)) },
      { name: 'Pub/Sub emulator*', pid: listenerPid(portOf(config.gcp.pubsubEmulatorHost)) },
      { name: 'Firestore emulator*', pid: listenerPid(portOf(config.gcp.firestoreEmulatorHost)) },
    ];
    const startCpu = () => {
      const accounted = [
        { name: 'bench (load generator, observer)', pid: process.pid as number | undefined },
        ...children.map((c) => ({ name: c.name, pid: c.proc.pid })),
        ...servers,
      ];
      const before = accounted.map((a) => (a.pid === undefined ? undefined : cpuSeconds(a.pid)));
      const t0 = performance.now();
      return {
        stop: () => ({
          wall: (performance.now() - t0) / 1000,
          used: accounted.map((a, i) => {
            const after = a.pid === undefined ? undefined : cpuSeconds(a.pid);
            const b = before[i];
            return { name: a.name, seconds: after === undefined || b === undefined ? undefined : after - b };
          }),
        }),
      };
    };
    const printCpu = (phase: string, r: ReturnType<ReturnType<typeof startCpu>['stop']>, units: number, unit: string) => {
      console.log(
        `  CPU used during ${phase} (${r.wall.toFixed(1)} s wall; the machine has 2 cores; * = shared with other users of the stack)`,
      );
      const ofACore = (seconds: number) => `${((seconds / r.wall) * 100).toFixed(0)}%`;
      let total = 0;
      const rows: Cell[][] = r.used.map(({ name, seconds }) => {
        if (seconds === undefined) return [name, 'n/a'];
        total += seconds;
        return [name, `${seconds.toFixed(1)} s`, ofACore(seconds), ((seconds * 1000) / units).toFixed(2)];
      });
      rows.push(['all of the above', `${total.toFixed(1)} s`, ofACore(total), '']);
      printTable(['process', 'CPU', 'of a core', `ms per ${unit}`], rows, { indent: 4, align: ['left', 'right', 'right', 'right'] });
    };

    // ---- Part 1: API under load, beside a bare Firestore read on the same schedule
    const pick = (i: number) => ids[(i * 7919) % ids.length]!;
    for (let i = 0; i < Math.min(ids.length, 500); i++) await get(pick(i)); // the API cache holds what a running API would
    const apiLoad = (seconds = opts.apiSeconds) =>
      openLoop(opts.apiRps, seconds, async (i) => {
        await get(pick(i));
      });
    const firestoreLoad = (seconds = opts.apiSeconds) =>
      openLoop(opts.apiRps, seconds, async (i) => {
        const snap = await collection.doc(pick(i)).get();
        if (!snap.exists) throw new Error('missing');
      });
    // Both sides first run untimed at the same rate: the figures are of a steady state, not of
    // connections opening, code warming up and the first round of cache refreshes.
    const warmUp = async (run: (seconds: number) => Promise<unknown>) => {
      if (opts.apiWarmupSeconds > 0) await run(opts.apiWarmupSeconds);
    };
    const apiRow = (name: string, r: Awaited<ReturnType<typeof apiLoad>>, target: boolean): Cell[] => [
      name,
      fmt(r.p50),
      fmt(r.p99),
      fmt(r.max),
      `${r.rps.toFixed(0)} req/s`,
      r.errors,
      target ? `target p99 < 10 ms: ${r.p99 < 10 ? 'met' : 'NOT met'}` : '',
    ];
    const printApi = (rows: readonly Cell[][]) =>
      printTable(['request', 'p50', 'p99', 'max', 'rate', 'errors', ''], rows, {
        indent: 2,
        align: ['left', 'right', 'right', 'right', 'right', 'right'],
      });
    if (opts.only !== 'events') {
      await warmUp(apiLoad);
      const loadBeforeApi = load();
      const cpuApi = startCpu();
      const apiRun = await apiLoad();
      const cpuApiUsed = cpuApi.stop();
      const loadAfterApi = load();
      await warmUp(firestoreLoad);
      const fsRun = await firestoreLoad();
      const loadAfterFs = load();
      console.log(
        `\nprofile API (own process) under load (target ${opts.apiRps} req/s), beside a bare Firestore read on the same schedule`,
      );
      printApi([apiRow('API GET /v1/customers/:id/profile', apiRun, true), apiRow('Firestore doc.get() (baseline)', fsRun, false)]);
      console.log(`    ${loadBeforeApi} before and ${loadAfterApi} after the API run, ${loadAfterFs} after the Firestore run`);
      console.log(`  API / Firestore p50 ratio ${(apiRun.p50 / fsRun.p50).toFixed(2)}, p99 ratio ${(apiRun.p99 / fsRun.p99).toFixed(2)}`);
      printCpu('the API load', cpuApiUsed, opts.apiRps * opts.apiSeconds, 'request');
    }
    if (opts.only === 'api') return;

    // ---- Part 2: event -> visible segment
    listenerChild = startChild('triggers', 'workers/trigger-listener.ts', ['--max-concurrent-signals', String(opts.maxConcurrentSignals)], {
      LOG_LEVEL: 'info',
    });
    children.push(listenerChild);
    const topic = pubsub.topic(config.pubsub.topic, { batching: { maxMessages: 100, maxMilliseconds: 1 } });
    const publish = (customerId: string, amount: number) => {
      const event = purchaseEvent(customerId, amount);
      const { data, attributes } = encodeEvent(event);
      return { eventId: String(event.event_id), published: topic.publishMessage({ data, attributes: { ...attributes } }) };
    };

    // Frequency and commit time per customer as the worker's log last showed them; waiters resolve when
    // it reaches theirs. The worker logs each step with the profile's purchase count and the commit time
    // of its write. Not a Firestore listener, nor a read per step: on the emulator a collection listener
    // slows every write to the collection, the very thing timed, and reading per step would take CPU
    // from the processes under test on a shared machine. A late notice can only make the figures worse,
    // never better: visibility is still when the API answers with the event, timed from its publish.
    const frequency = new Map<string, number>();
    const committedAt = new Map<string, number>();
    const waiters = new Map<string, Array<{ k: number; resolve: () => void }>>();
    const known = new Set(ids);
    const unsubscribe = workerSteps.on(({ customerId, frequency: f, committedAt: at }) => {
      if (!known.has(customerId)) return;
      if (f > (frequency.get(customerId) ?? 0)) {
        committedAt.set(`${customerId}/${f}`, at);
        frequency.set(customerId, f);
      }
      const list = waiters.get(customerId) ?? [];
      waiters.set(
        customerId,
        list.filter((w) => (w.k <= f ? (w.resolve(), false) : true)),
      );
    });
    const reached = (customerId: string, k: number, timeoutMs: number) =>
      new Promise<boolean>((resolve) => {
        if ((frequency.get(customerId) ?? 0) >= k) return resolve(true);
        const timer = setTimeout(() => resolve(false), timeoutMs);
        const list = waiters.get(customerId) ?? [];
        list.push({ k, resolve: () => (clearTimeout(timer), resolve(true)) });
        waiters.set(customerId, list);
      });

    // Warm-up: every customer's workflow is running, the worker has its bundle, model and score bounds.
    const tWarm = Date.now();
    for (const c of ids) publish(c, 1);
    await waitFor('the warm-up purchases to be applied', async () => ids.every((c) => (frequency.get(c) ?? 0) >= 2), 300_000, children);
    console.log(`\nwarm-up: ${customers} workflows started and first purchases applied in ${Date.now() - tWarm} ms (${load()})`);

    const visible: number[] = [];
    const visibleChanges: number[] = [];
    const toCommit: number[] = [];
    const commitToVisible: number[] = [];
    let timedOut = 0;
    const expected = new Map<string, number>(ids.map((c) => [c, 2]));
    const watch = async (customerId: string, k: number, publishedAt: number) => {
      const deadline = publishedAt + 30_000;
      const noticed = await reached(customerId, k, 30_000);
      for (;;) {
        const body = noticed ? await get(customerId).catch(() => undefined) : undefined;
        if (body && body.rfm.frequency >= k && body.segment_label === VIP.label) {
          const at = Date.now();
          visible.push(at - publishedAt);
          if (k === 3) visibleChanges.push(at - publishedAt);
          // The commit that first included this event (a coalesced step may have skipped k itself).
          let commit: number | undefined;
          for (let f = k; commit === undefined && f <= k + 100; f++) commit = committedAt.get(`${customerId}/${f}`);
          if (commit !== undefined) {
            toCommit.push(commit - publishedAt);
            commitToVisible.push(at - commit);
          }
          return;
        }
        if (Date.now() > deadline) {
          timedOut += 1;
          return;
        }
        await new Promise((r) => setTimeout(r, opts.pollMs));
      }
    };
    const watches: Promise<void>[] = [];
    const cpuEvents = startCpu();
    const loadBeforeEvents = load();
    const mixed = opts.mixed ? apiLoad() : undefined;
    const p1 = await openLoop(opts.rate, opts.seconds, async (i) => {
      const customerId = ids[i % ids.length]!;
      const k = expected.get(customerId)! + 1;
      expected.set(customerId, k);
      const publishedAt = Date.now();
      const { published } = publish(customerId, 1500);
      watches.push(watch(customerId, k, publishedAt));
      await published;
    });
    const loadAfterPublishing = load();
    await Promise.all(watches);
    const cpuEventsUsed = cpuEvents.stop();
    const mixedRun = await mixed;
    unsubscribe();
    await stopChild(listenerChild);
    const stopped = listenerChild.lines
      .map((l) => {
        try {
          return JSON.parse(l) as {
            msg?: string;
            signals?: number;
            signalled?: number;
            coalesced?: number;
            failed?: number;
            publishToSignalMs?: LatencySummary;
          };
        } catch {
          return undefined;
        }
      })
      .find((l) => l?.msg === 'trigger listener stopped');

    const ev = summarize(visible);
    console.log(`\nevent -> reclassified profile visible through the API (API, worker, listener in their own processes)`);
    console.log(
      `  ${events} events at ${p1.rps.toFixed(1)}/s achieved; visible ${ev.n}, timed out ${timedOut}, publish errors ${p1.errors}`,
    );
    printLatencies([
      latencyRow('all events', ev, `target p99 < 1000 ms: ${ev.p99 < 1000 ? 'met' : 'NOT met'}`),
      latencyRow('segment changes (Occasional -> VIP)', summarize(visibleChanges)),
    ]);
    console.log(`    ${loadBeforeEvents} before, ${loadAfterPublishing} at the end of publishing, ${load()} after`);
    console.log('  where the time goes');
    printLatencies([
      ...(stopped?.publishToSignalMs ? [latencyRow('publish -> signal accepted (listener)', stopped.publishToSignalMs)] : []),
      latencyRow('publish -> Firestore commit', summarize(toCommit)),
      latencyRow('commit -> visible through the API', summarize(commitToVisible)),
    ]);
    if (stopped?.publishToSignalMs) {
      const perSignal = (stopped.signalled ?? 0) / Math.max(stopped.signals ?? 0, 1);
      console.log(
        `    listener: ${stopped.signals} signals for ${stopped.signalled} events (${perSignal.toFixed(2)} events per signal, ` +
          `${stopped.coalesced} coalesced, ${stopped.failed} failed; warm-up included)`,
      );
    } else console.log(`  (the listener's summary line is missing; see ${logDir}/triggers.log)`);
    printCpu('the event phase', cpuEventsUsed, events, 'event');
    if (mixedRun) {
      console.log(`  API under the same load during the event phase (--mixed)`);
      printApi([apiRow('API GET /v1/customers/:id/profile', mixedRun, true)]);
    }

    if (opts.samples > 0) {
      const sample = ids.slice(0, Math.min(opts.samples, ids.length));
      const w = await workerBreakdown(client, sample);
      console.log(`  worker side, from ${sample.length} workflow histories (warm-up included)`);
      printLatencies([
        latencyRow('signal -> workflow task started', w.signalToStart),
        latencyRow('workflow task started -> completed', w.taskRun, 'includes the local activity and its Firestore write'),
      ]);
      const per = (x: number) => (w.events === 0 ? 'n/a' : (x / w.events).toFixed(2));
      console.log(
        `    per event: ${per(w.signals)} signals, ${per(w.workflowTasks)} workflow tasks, ${per(w.markers)} markers, ${per(w.timers)} timers, ` +
          `${per(w.historyEvents)} history events (${w.events} events in ${w.steps} steps)`,
      );
    }
    agent.destroy();
  } finally {
    if (listenerChild) await stopChild(listenerChild);
    // End the per-customer workflows (they would wait out their idle period on a queue nobody polls).
    const query = `TaskQueue = '${config.temporal.taskQueue}' AND ExecutionStatus = 'Running'`;
    const running: string[] = [];
    try {
      for await (const wf of client.workflow.list({ query })) running.push(wf.workflowId);
    } catch (err) {
      console.error(`could not list the bench's workflows: ${String(err)}`);
    }
    await Promise.allSettled(running.map((wid) => client.workflow.getHandle(wid).terminate('bench finished')));
    await Promise.all(children.map((c) => stopChild(c)));
    await pubsub
      .subscription(config.pubsub.triggerSubscription)
      .delete()
      .catch(() => undefined);
    await pubsub
      .topic(config.pubsub.topic)
      .delete()
      .catch(() => undefined);
    await firestore.recursiveDelete(collection).catch(() => undefined);
    await storage
      .bucket(config.lake.bucket)
      .deleteFiles({ force: true })
      .then(() => storage.bucket(config.lake.bucket).delete())
      .catch(() => undefined);
    await connection.close();
    await closeGcpClients(clients);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

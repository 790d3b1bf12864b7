/**
 * `npm start` on the real local stack: the worker, the trigger listener and the profile API run as
 * three supervised processes. All three answer; one killed by pid is restarted; SIGTERM to
 * `npm start` stops every process. The run has its own task queue, topic, subscriptions, bucket,
 * profile collection and schedule prefix, so it shares nothing with other tests.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { PROJECT_ROOT } from '../../core/config.js';
import { encodeEvent } from '../../core/events.js';
import { closeGcpClients, createGcpClients, type GcpClients } from '../../stores/clients.js';
import { createTemporalClient } from '../../workers/client.js';
import { ingestStatsQuery } from '../../workflows/ingest-messages.js';
import { reclassifyWorkflowId } from '../../workflows/reclassify-messages.js';
import { ingestionStart } from '../../schedules/definitions.js';
import { purchaseEvent } from '../support/realtime-fixtures.js';
import { testConfig } from '../support/stack.js';
import type { Client } from '@temporalio/client';

const run = randomUUID().slice(0, 8);
const overrides = {
  TEMPORAL_TASK_QUEUE: `supervisor-${run}`,
  SEGFLOW_EVENTS_TOPIC: `supervisor-events-${run}`,
  SEGFLOW_LAKE_SUBSCRIPTION: `supervisor-lake-${run}`,
  SEGFLOW_TRIGGER_SUBSCRIPTION: `supervisor-triggers-${run}`,
  SEGFLOW_LAKE_BUCKET: `supervisor-lake-${run}`,
  SEGFLOW_FIRESTORE_PROFILES: `supervisor_profiles_${run}`,
  SEGFLOW_SCHEDULE_PREFIX: `supervisor-${run}-`,
  LOG_LEVEL: 'info',
};
const config = testConfig('supervisor', overrides);

interface StartEvent {
  process?: string;
  event?: string;
  childPid?: number;
  msg?: string;
}

let start: ChildProcess;
const events: StartEvent[] = [];
let output = '';
let client: Client;
let clients: GcpClients;

/** Resolves with the first supervisor event matching `match`, from `from` on. */
async function waitForEvent(match: (e: StartEvent) => boolean, timeoutMs: number, from = 0): Promise<StartEvent> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = events.slice(from).find(match);
    if (found) return found;
    await sleep(100);
  }
  throw new Error(`no matching event within ${timeoutMs} ms; output so far:\n${output.slice(-4000)}`);
}

/** The warnings and errors logged so far, for a failure message. */
function problems(): string {
  return output
    .split('\n')
    .filter((l) => /"level":"(warn|error|fatal)"/.test(l))
    .map((l) => l.slice(0, 600))
    .join('\n');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

before(async () => {
  start = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts', '--no-schedules', '--keep-stack'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...overrides, SEGFLOW_LOG_FORMAT: 'json', CI: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [start.stdout, start.stderr]) {
    createInterface({ input: stream! }).on('line', (line) => {
      output += `${line}\n`;
      if (!line.startsWith('{')) return;
      try {
        events.push(JSON.parse(line) as StartEvent);
      } catch {
        // a line that only looks like JSON
      }
    });
  }
  client = await createTemporalClient(config);
  clients = createGcpClients(config);
});

after(async () => {
  if (start.exitCode === null && start.signalCode === null) start.kill('SIGKILL');
  await client?.workflow
    .getHandle(ingestionStart(config).workflowId)
    .terminate('supervisor test done')
    .catch(() => undefined);
  await client?.connection.close();
  if (clients) await closeGcpClients(clients);
});

test(
  'npm start runs worker, listener and API as processes, restarts one that dies and stops all on SIGTERM',
  { timeout: 240_000 },
  async () => {
    // The banner comes once the API answers /healthz.
    const deadline = Date.now() + 120_000;
    while (!output.includes('segflow is running') && Date.now() < deadline) await sleep(200);
    assert.match(output, /segflow is running/, output.slice(-4000));
    assert.match(output, /Temporal UI {3}http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows/);
    assert.match(output, /explorer {6}http:\/\/127\.0\.0\.1:\d+\/explorer\//);

    const started = (name: string) => waitForEvent((e) => e.process === name && e.event === 'started', 5_000);
    const pids = {
      worker: (await started('worker')).childPid!,
      listener: (await started('listener')).childPid!,
      api: (await started('api')).childPid!,
    };
    assert.equal(new Set([start.pid, ...Object.values(pids)]).size, 4, 'four distinct processes');

    // The API answers.
    const health = await fetch(`http://127.0.0.1:${config.api.port}/healthz`);
    assert.equal(health.status, 200, await health.text());

    // The worker polls: the ingestion workflow it runs answers a query.
    const ingestion = client.workflow.getHandle(ingestionStart(config).workflowId);
    const queryWithin = async (ms: number) => {
      const until = Date.now() + ms;
      for (;;) {
        try {
          return await ingestion.query(ingestStatsQuery);
        } catch (err) {
          if (Date.now() > until) {
            throw new Error(`ingestStats query failed for ${ms} ms: ${String(err)}\n${problems()}`, { cause: err });
          }
          await sleep(500);
        }
      }
    };
    assert.equal(typeof (await queryWithin(60_000)).written, 'number');

    // The listener turns a purchase into its customer's reclassification workflow.
    const customer = `cust-sup-${run}`;
    const { data, attributes } = encodeEvent(purchaseEvent(customer, 42));
    await clients.pubsub.topic(config.pubsub.topic).publishMessage({ data, attributes: { ...attributes } });
    const reclassify = client.workflow.getHandle(reclassifyWorkflowId(customer, config.schedules.prefix));
    const until = Date.now() + 60_000;
    let described: Awaited<ReturnType<typeof reclassify.describe>> | undefined;
    while (described === undefined && Date.now() < until) {
      described = await reclassify.describe().catch(() => undefined);
      if (described === undefined) await sleep(500);
    }
    assert.ok(described, `no ${reclassifyWorkflowId(customer, config.schedules.prefix)} workflow within 60 s`);
    assert.equal(described.taskQueue, config.temporal.taskQueue);

    // A worker killed by pid comes back under a new pid and polls again.
    const mark = events.length;
    process.kill(pids.worker, 'SIGKILL');
    await waitForEvent((e) => e.process === 'worker' && e.event === 'exited', 10_000, mark);
    await waitForEvent((e) => e.process === 'worker' && e.event === 'restarting', 2_000, mark);
    const restarted = (await waitForEvent((e) => e.process === 'worker' && e.event === 'started', 15_000, mark)).childPid!;
    assert.notEqual(restarted, pids.worker);
    assert.ok(alive(restarted));
    assert.equal(typeof (await queryWithin(90_000)).written, 'number');
    await reclassify.terminate('supervisor test done').catch(() => undefined);

    // SIGTERM stops everything.
    const exited = new Promise<number | null>((resolve) => start.once('exit', (code) => resolve(code)));
    start.kill('SIGTERM');
    assert.equal(await exited, 0, output.slice(-4000));
    for (const pid of [restarted, pids.listener, pids.api]) assert.equal(alive(pid), false, `process ${pid} still running`);
    assert.match(output, /segflow stopped/);
  },
);

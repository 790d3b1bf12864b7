/**
 * forgetCustomers: one workflow per forget request (id `forget/<requestId>`, docs/privacy.md).
 * Suppresses the ids first, so nothing new of theirs lands while the stores are cleaned; waits
 * for the suppression to reach every reader; then removes them store by store and page by page
 * (Temporal runs, the lake, the warehouse, the online profiles), tells webhook subscribers, searches
 * every store again and writes the audit record. Every step is an idempotent activity, so a worker
 * killed mid-request resumes where the history says and ends in the same state. The progress per
 * store is the `forgetProgress` query (Temporal UI: Queries). The input and the history hold the
 * request id and counts only, never a customer id.
 */
import { ActivityFailure, log, proxyActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { ForgetActivities, StoreOutcome } from '../activities/forget.js';
import {
  FORGET_STORES,
  forgetProgressQuery,
  type ForgetInput,
  type ForgetProgress,
  type ForgetResult,
  type ForgetStore,
  type StoreProgress,
} from './forget-messages.js';

const removal = proxyActivities<ForgetActivities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/** Deliveries give up after a few attempts: a subscriber that is down must not hold the forgetting of everything else. */
const delivery = proxyActivities<ForgetActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 8 },
});

function emptyStore(pages: number): StoreProgress {
  return { state: 'pending', pagesDone: 0, pages, found: 0, removed: 0, detail: {} };
}

function add(store: StoreProgress, outcome: StoreOutcome): void {
  store.found += outcome.found;
  store.removed += outcome.removed;
  for (const [k, v] of Object.entries(outcome.detail)) store.detail[k] = (store.detail[k] ?? 0) + v;
  store.pagesDone += 1;
}

export async function forgetCustomers({ requestId }: ForgetInput): Promise<ForgetResult> {
  const progress: ForgetProgress = {
    requestId,
    dryRun: false,
    customers: 0,
    pages: 0,
    stage: 'planning',
    stores: Object.fromEntries(FORGET_STORES.map((s) => [s, emptyStore(0)])) as Record<ForgetStore, StoreProgress>,
  };
  setHandler(forgetProgressQuery, () => progress);

  const plan = await removal.forgetPlan({ requestId });
  const { dryRun, pages } = plan;
  Object.assign(progress, { dryRun, customers: plan.customers, pages });
  const oneScan: readonly ForgetStore[] = ['lake_raw', 'lake_quarantine', 'segmentation_runs'];
  for (const s of FORGET_STORES) progress.stores[s] = emptyStore(oneScan.includes(s) ? 1 : pages);
  progress.stores.webhooks.pages = dryRun ? 0 : pages * plan.subscribers.length;

  async function perPage(store: ForgetStore, run: (page: number) => Promise<StoreOutcome>): Promise<void> {
    const p = progress.stores[store];
    p.state = 'running';
    for (let page = 0; page < pages; page++) add(p, await run(page));
    p.state = 'done';
  }

  progress.stage = 'suppressing';
  await perPage('suppression', (page) => removal.forgetSuppress({ requestId, page, dryRun }));
  if (plan.settleMs > 0) {
    progress.stage = 'settling';
    await sleep(plan.settleMs);
  }

  progress.stage = 'removing';
  // The customer's workflow first: a running one would write the profile again.
  await perPage('temporal', (page) => removal.forgetReclassify({ requestId, page, dryRun }));
  for (const area of ['raw', 'quarantine'] as const) {
    const p = progress.stores[`lake_${area}`];
    p.state = 'running';
    add(p, await removal.forgetLake({ requestId, area, dryRun }));
    p.state = 'done';
  }
  const runs = progress.stores.segmentation_runs;
  runs.state = 'running';
  add(runs, await removal.forgetSegmentationRuns({ requestId, dryRun }));
  runs.state = 'done';
  // After the lake, so a reload of any hour no longer brings them back.
  await perPage('warehouse', (page) => removal.forgetWarehouse({ requestId, page, dryRun }));
  await perPage('firestore', (page) => removal.forgetProfiles({ requestId, page, dryRun }));

  const hooks = progress.stores.webhooks;
  hooks.state = 'running';
  if (!dryRun) {
    const occurredAt = new Date(workflowInfo().startTime).toISOString();
    for (let page = 0; page < pages; page++) {
      for (const subscriberId of plan.subscribers) {
        try {
          add(hooks, await delivery.forgetNotify({ requestId, page, subscriberId, occurredAt }));
        } catch (err) {
          if (!(err instanceof ActivityFailure)) throw err;
          hooks.detail.failed = (hooks.detail.failed ?? 0) + 1;
          hooks.pagesDone += 1;
          log.warn('customer.forgotten delivery gave up', { requestId, subscriberId, page, error: err.cause?.message ?? err.message });
        }
      }
    }
  }
  hooks.state = 'done';

  progress.stage = 'verifying';
  progress.verification = await removal.forgetVerify({ requestId });
  progress.verified = Object.values(progress.verification).every((n) => n === 0);

  const stores = Object.fromEntries(
    FORGET_STORES.map((s) => [s, { found: progress.stores[s].found, removed: progress.stores[s].removed, ...progress.stores[s].detail }]),
  );
  await removal.forgetFinish({ requestId, workflowId: workflowInfo().workflowId, stores, verification: progress.verification });
  progress.stage = 'done';
  return progress;
}

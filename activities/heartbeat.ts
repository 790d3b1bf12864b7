/**
 * Heartbeats, the one way an activity tells Temporal it is alive. A task with a
 * heartbeatTimeout then learns of a worker that died (SIGKILL, OOM) within that
 * timeout instead of waiting out its whole startToCloseTimeout. Both helpers do
 * nothing outside an activity (scripts, tests), where there is nobody to tell.
 */
import { asyncLocalStorage } from '@temporalio/activity';

/**
 * How often a long call heartbeats: well inside the shortest heartbeatTimeout a task sets. The SDK
 * throttles what it sends to the server, so beating often costs nothing.
 */
export const HEARTBEAT_EVERY_MS = 5_000;

/** The activity the caller runs in, or undefined outside one (for stores that heartbeat and honour cancellation). */
export function currentActivity() {
  return asyncLocalStorage.getStore();
}

/** Records progress (shown in the UI, and handed to the next attempt) on the current activity. */
export function heartbeat(details?: unknown): void {
  asyncLocalStorage.getStore()?.heartbeat(details);
}

/**
 * Heartbeats every HEARTBEAT_EVERY_MS while `work` runs, for calls that report no progress of their
 * own (a BigQuery job, for instance); with a `stage`, the details say which call and for how long.
 */
export async function whileHeartbeating<T>(work: () => Promise<T>, stage?: string): Promise<T> {
  const ctx = asyncLocalStorage.getStore();
  if (ctx === undefined) return work();
  const started = Date.now();
  const timer = setInterval(
    () => ctx.heartbeat(stage === undefined ? undefined : { stage, elapsedMs: Date.now() - started }),
    HEARTBEAT_EVERY_MS,
  );
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

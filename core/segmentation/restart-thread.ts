/**
 * k-means++ restarts, and the assignment of a matrix in shared memory, split with
 * one helper thread, so training uses a second core as scikit-learn's does.
 * trainKMeans stays synchronous: this thread posts part of the work, does the
 * rest, then blocks (Atomics.wait) until the answer is on the port and takes it
 * with receiveMessageOnPort. The helper runs the same runRestarts on the same
 * seeds (or assigns the second half of the rows into the same shared labels), so
 * results are exactly those of doing everything here. The helper starts on first
 * use, is not waited for and never keeps the process alive; if it errs or stays
 * silent past the timeout, its share and every later call run here.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { assignAll, assignInto } from './assign.js';
import { runRestarts, type RestartJob, type RestartOutcome } from './train.js';

/** Slot 0: the helper has loaded (1). Slot 1: answers the helper has posted so far. */
const READY = 0;
const ANSWERS = 1;
/** Far above any real share of restarts; past it the helper is given up. */
const ANSWER_TIMEOUT_MS = 10 * 60_000;

/** Below this many rows an assignment pass is not split: the hand-off would cost more than it saves. */
export const MIN_SHARED_ASSIGN_ROWS = 20_000;

interface AssignJob {
  /** Views on SharedArrayBuffers: the helper reads the rows and writes their labels in place. */
  matrix: Float64Array;
  labels: Int32Array;
  nRows: number;
  dim: number;
  centroids: Float64Array;
}

type HelperJob = { restarts: RestartJob } | { assign: AssignJob };
type HelperReply = { outcomes: RestartOutcome[] } | { assigned: { inertia: number; sizes: number[] } } | { error: string };

interface Helper {
  worker: Worker;
  port: MessagePort;
  state: Int32Array;
  answers: number;
  broken: boolean;
}

let helper: Helper | null | undefined;

function startHelper(): Helper | null {
  if (availableParallelism() < 2) return null;
  try {
    const { port1, port2 } = new MessageChannel();
    const state = new Int32Array(new SharedArrayBuffer(8));
    // The entry is TypeScript, loaded through tsx's API: on Node 20 a worker thread does not get the
    // loader hooks of `--import tsx` (in its execArgv or inherited) before its entry module loads.
    const api = JSON.stringify(import.meta.resolve('tsx/esm/api'));
    const entry = JSON.stringify(new URL('./restart-worker.ts', import.meta.url).href);
    const worker = new Worker(`import(${api}).then((tsx) => tsx.tsImport(${entry}, ${entry}))`, {
      eval: true,
      workerData: { port: port2, state },
      transferList: [port2],
    });
    const h: Helper = { worker, port: port1, state, answers: 0, broken: false };
    worker.on('error', () => (h.broken = true));
    worker.on('exit', () => (h.broken = true));
    worker.unref();
    port1.unref();
    return h;
  } catch {
    return null;
  }
}

/** Starts the helper thread now (it loads in the background), so that the first training already shares. */
export function warmRestartThread(): void {
  if (helper === undefined) helper = startHelper();
}

/** True once the helper thread has loaded and takes restarts. */
export function restartThreadReady(): boolean {
  return helper != null && !helper.broken && Atomics.load(helper.state, READY) === 1;
}

/** Runs the job's restarts, part of them on the helper thread when it is up; outcomes in seed order. */
export function runRestartsShared(job: RestartJob): { outcomes: RestartOutcome[]; onHelper: number } {
  warmRestartThread();
  const h = helper;
  if (!h || !restartThreadReady() || job.seeds.length < 2) return { outcomes: runRestarts(job), onHelper: 0 };
  const theirs = job.seeds.slice(0, Math.floor(job.seeds.length / 2));
  const ours = job.seeds.slice(theirs.length);
  h.port.postMessage({ restarts: { ...job, seeds: theirs } } satisfies HelperJob);
  const mine = runRestarts({ ...job, seeds: ours });
  const reply = awaitReply(h);
  if (reply && 'outcomes' in reply && reply.outcomes.length === theirs.length)
    return { outcomes: [...reply.outcomes, ...mine], onHelper: theirs.length };
  h.broken = true;
  void h.worker.terminate();
  return { outcomes: [...runRestarts({ ...job, seeds: theirs }), ...mine], onHelper: 0 };
}

/**
 * One assignment pass (assignInto) over a matrix on a SharedArrayBuffer, the second half of the
 * rows on the helper thread when it is up. The labels and sizes are those of assignInto on all
 * rows; the inertia is the sum of the two halves' sums, so it may differ from a single pass's in
 * the last bits. A matrix not in shared memory, or a small one, is assigned here alone.
 */
export function assignShared(
  matrix: Float64Array,
  nRows: number,
  dim: number,
  centroids: Float64Array,
): { labels: Int32Array; inertia: number; sizes: number[]; onHelper: number } {
  warmRestartThread();
  const h = helper;
  if (!h || !restartThreadReady() || !(matrix.buffer instanceof SharedArrayBuffer) || nRows < MIN_SHARED_ASSIGN_ROWS) {
    return { ...assignAll(matrix, nRows, dim, centroids), onHelper: 0 };
  }
  const labels = new Int32Array(new SharedArrayBuffer(nRows * Int32Array.BYTES_PER_ELEMENT));
  const half = Math.floor(nRows / 2);
  const theirs: AssignJob = {
    matrix: matrix.subarray(half * dim, nRows * dim),
    labels: labels.subarray(half),
    nRows: nRows - half,
    dim,
    centroids,
  };
  h.port.postMessage({ assign: theirs } satisfies HelperJob);
  const mine = assignInto(matrix, half, dim, centroids, labels, null);
  const reply = awaitReply(h);
  if (reply && 'assigned' in reply) {
    const sizes = mine.sizes.map((n, c) => n + (reply.assigned.sizes[c] ?? 0));
    return { labels, inertia: mine.inertia + reply.assigned.inertia, sizes, onHelper: nRows - half };
  }
  h.broken = true;
  void h.worker.terminate();
  const rest = assignInto(theirs.matrix, theirs.nRows, dim, centroids, theirs.labels, null);
  return { labels, inertia: mine.inertia + rest.inertia, sizes: mine.sizes.map((n, c) => n + rest.sizes[c]!), onHelper: 0 };
}

function awaitReply(h: Helper): HelperReply | undefined {
  const expected = h.answers + 1;
  const deadline = Date.now() + ANSWER_TIMEOUT_MS;
  // Blocks this thread (its event loop included) until the helper counts its answer; the helper
  // answers every job, errors included, so only a helper that hangs or dies makes this time out.
  while (Atomics.load(h.state, ANSWERS) < expected) {
    const left = deadline - Date.now();
    if (left <= 0) return undefined;
    Atomics.wait(h.state, ANSWERS, expected - 1, left);
  }
  h.answers = expected;
  return receiveMessageOnPort(h.port)?.message as HelperReply | undefined;
}

/** The helper's side (restart-worker.ts): answer each job on the port, then count the answer and wake the caller. */
export function serveRestarts(port: MessagePort, state: Int32Array): void {
  // Compile ml-kmeans and the scoring kernel here before saying ready, so no caller waits on this thread's first JIT.
  const dim = 16;
  const rows = new Float64Array(600 * dim).map((_, i) => ((i * 7919) % 1000) / 1000);
  runRestarts({ restart: rows, restartN: 600, rank: rows, rankN: 600, dim, k: 8, seeds: [1, 2, 3], maxIterations: 100, tolerance: 1e-6 });
  port.on('message', (job: HelperJob) => {
    let reply: HelperReply;
    try {
      if ('restarts' in job) reply = { outcomes: runRestarts(job.restarts) };
      else {
        const { matrix, labels, nRows, dim: d, centroids } = job.assign;
        reply = { assigned: assignInto(matrix, nRows, d, centroids, labels, null) };
      }
    } catch (err) {
      reply = { error: err instanceof Error ? err.message : String(err) };
    }
    port.postMessage(reply);
    Atomics.add(state, ANSWERS, 1);
    Atomics.notify(state, ANSWERS);
  });
  Atomics.store(state, READY, 1);
}

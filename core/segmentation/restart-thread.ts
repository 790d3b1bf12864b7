/**
 * k-means++ restarts shared with one helper thread, for training on a machine
 * with more than one core (scikit-learn's KMeans uses every core too).
 *
 * trainKMeans stays synchronous: the calling thread posts part of the restarts
 * to the helper, runs the rest itself, then blocks (Atomics.wait) until the
 * helper's answer is on the port and takes it with receiveMessageOnPort. The
 * helper runs the same runRestarts on the same seeds, so the outcomes, and the
 * winner, are exactly those of running every restart here.
 *
 * The helper starts on first use and is not waited for: until it has loaded,
 * restarts run here alone. It never keeps the process alive (unref). When it
 * answers with an error or stays silent past the timeout, its share runs here,
 * and so does every later call.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { runRestarts, type RestartJob, type RestartOutcome } from './train.js';

/** Slot 0: the helper has loaded (1). Slot 1: answers the helper has posted so far. */
const READY = 0;
const ANSWERS = 1;
/** Far above any real share of restarts (seconds at a million rows); past it the helper is given up. */
const ANSWER_TIMEOUT_MS = 10 * 60_000;

type HelperReply = { outcomes: RestartOutcome[] } | { error: string };

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
  h.port.postMessage({ ...job, seeds: theirs });
  const mine = runRestarts({ ...job, seeds: ours });
  const reply = awaitReply(h);
  if (reply && 'outcomes' in reply && reply.outcomes.length === theirs.length) return { outcomes: [...reply.outcomes, ...mine], onHelper: theirs.length };
  h.broken = true;
  void h.worker.terminate();
  return { outcomes: [...runRestarts({ ...job, seeds: theirs }), ...mine], onHelper: 0 };
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
  port.on('message', (job: RestartJob) => {
    let reply: HelperReply;
    try {
      reply = { outcomes: runRestarts(job) };
    } catch (err) {
      reply = { error: err instanceof Error ? err.message : String(err) };
    }
    port.postMessage(reply);
    Atomics.add(state, ANSWERS, 1);
    Atomics.notify(state, ANSWERS);
  });
  Atomics.store(state, READY, 1);
}

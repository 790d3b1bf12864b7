/**
 * The chaos run's own stack and processes: a second local stack on ports of its
 * own with its own SEGFLOW_STACK_DIR (binaries from the main .stack/bin), so
 * stopping its Temporal dev server or Pub/Sub emulator cannot hurt anyone else;
 * and a pool of worker processes (`tsx workers/main.ts`) that can be SIGKILLed
 * and restarted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT } from '../core/config.js';
import type * as stackLib from '../scripts/stack-lib.js';

export const STACK_PORT_NAMES = [
  'STACK_TEMPORAL_PORT',
  'STACK_TEMPORAL_UI_PORT',
  'STACK_PUBSUB_PORT',
  'STACK_FIRESTORE_PORT',
  'STACK_GCS_PORT',
  'STACK_BIGQUERY_PORT',
  'STACK_BIGQUERY_GRPC_PORT',
] as const;

export interface ChaosPorts {
  temporal: number;
  temporalUi: number;
  pubsub: number;
  firestore: number;
  gcs: number;
  bigquery: number;
  bigqueryGrpc: number;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** The first base (stepping by 20) whose seven ports are all free. */
export async function pickPorts(base: number): Promise<ChaosPorts> {
  for (let b = base; b < base + 20 * 25; b += 20) {
    const ports = Array.from({ length: 7 }, (_, i) => b + i);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) {
      const [temporal, temporalUi, pubsub, firestore, gcs, bigquery, bigqueryGrpc] = ports as [
        number,
        number,
        number,
        number,
        number,
        number,
        number,
      ];
      return { temporal, temporalUi, pubsub, firestore, gcs, bigquery, bigqueryGrpc };
    }
  }
  throw new Error(`no free block of 7 ports found from ${base}; pass --port-base with another value`);
}

type StackLib = typeof stackLib;

export interface ChaosStack {
  dir: string;
  ports: ChaosPorts;
  lib: StackLib;
  up(): Promise<void>;
  stop(service: 'temporal' | 'pubsub'): Promise<void>;
  down(): Promise<void>;
}

/**
 * Starts the isolated stack. scripts/stack-lib.ts reads its directories and ports from
 * the environment when first imported, so they are set before the import.
 */
export async function openChaosStack(opts: {
  dir: string;
  ports: ChaosPorts;
  log: (line: string) => void;
  fresh: boolean;
}): Promise<ChaosStack> {
  const mainBin = path.join(PROJECT_ROOT, '.stack', 'bin');
  if (!existsSync(path.join(mainBin, 'temporal'))) {
    throw new Error(`stack binaries not found in ${mainBin}; run \`npm run stack:install\` first`);
  }
  if (opts.fresh) rmSync(opts.dir, { recursive: true, force: true });
  mkdirSync(opts.dir, { recursive: true });
  const p = opts.ports;
  Object.assign(process.env, {
    SEGFLOW_STACK_DIR: opts.dir,
    SEGFLOW_STACK_BIN_DIR: process.env.SEGFLOW_STACK_BIN_DIR ?? mainBin,
    STACK_TEMPORAL_PORT: String(p.temporal),
    STACK_TEMPORAL_UI_PORT: String(p.temporalUi),
    STACK_PUBSUB_PORT: String(p.pubsub),
    STACK_FIRESTORE_PORT: String(p.firestore),
    STACK_GCS_PORT: String(p.gcs),
    STACK_BIGQUERY_PORT: String(p.bigquery),
    STACK_BIGQUERY_GRPC_PORT: String(p.bigqueryGrpc),
  });
  const lib = await import('../scripts/stack-lib.js');
  if (lib.STACK_DIR !== opts.dir || lib.PORTS.temporal !== p.temporal) {
    throw new Error(
      'scripts/stack-lib.ts was imported before the chaos stack settings; the chaos runner must import it only through chaos/stack.ts',
    );
  }
  const stack: ChaosStack = {
    dir: opts.dir,
    ports: p,
    lib,
    async up() {
      await lib.up(opts.log);
    },
    async stop(service) {
      await lib.down(opts.log, [service]);
    },
    async down() {
      await lib.down(opts.log);
    },
  };
  await stack.up();
  return stack;
}

// ---------------------------------------------------------------- workers

export interface WorkerPoolStats {
  started: number;
  killed: number;
  /** Exits nobody asked for (restarted too). */
  unexpectedExits: number;
}

/** Worker processes on the chaos task queue, kept at `size` until stopped. */
export class WorkerPool {
  private readonly children = new Map<number, ChildProcess>();
  private stopping = false;
  private seq = 0;
  readonly stats: WorkerPoolStats = { started: 0, killed: 0, unexpectedExits: 0 };
  private readonly expectedExit = new Set<number>();

  constructor(private readonly opts: { size: number; env: NodeJS.ProcessEnv; logDir: string; log: (line: string) => void }) {
    mkdirSync(opts.logDir, { recursive: true });
  }

  start(): void {
    while (this.children.size < this.opts.size) this.spawnOne();
  }

  get pids(): number[] {
    return [...this.children.keys()];
  }

  private spawnOne(): void {
    const n = ++this.seq;
    const out = openSync(path.join(this.opts.logDir, `worker-${n}.log`), 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
      cwd: PROJECT_ROOT,
      env: this.opts.env,
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    const pid = child.pid;
    if (pid === undefined) throw new Error('could not start a worker process (node workers/main.ts)');
    this.children.set(pid, child);
    this.stats.started++;
    child.on('exit', (code, signal) => {
      this.children.delete(pid);
      const expected = this.expectedExit.delete(pid);
      if (this.stopping) return;
      if (!expected) {
        this.stats.unexpectedExits++;
        this.opts.log(
          `worker ${pid} exited on its own (code ${code}, signal ${signal}); see ${this.opts.logDir}/worker-${n}.log; starting a replacement`,
        );
      }
      // Replacements come up after a short pause, as a supervisor would bring them.
      setTimeout(
        () => {
          if (!this.stopping) this.start();
        },
        expected ? 1_000 : 2_000,
      ).unref();
    });
  }

  /** SIGKILL one worker at random (no shutdown, no drain); the pool replaces it. */
  killOne(pick: (n: number) => number): number | undefined {
    const pids = this.pids;
    if (pids.length === 0) return undefined;
    const pid = pids[pick(pids.length)]!;
    this.expectedExit.add(pid);
    this.children.get(pid)?.kill('SIGKILL');
    this.stats.killed++;
    return pid;
  }

  /** Waits until `size` workers are running (after kills). */
  async waitFull(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.children.size < this.opts.size && Date.now() < deadline) await sleep(200);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const exits = [...this.children.values()].map(
      (c) => new Promise<void>((resolve) => (c.exitCode !== null ? resolve() : c.once('exit', () => resolve()))),
    );
    for (const c of this.children.values()) c.kill('SIGTERM');
    const timeout = sleep(15_000).then(() => {
      for (const c of this.children.values()) c.kill('SIGKILL');
    });
    await Promise.race([Promise.all(exits), timeout]);
  }
}

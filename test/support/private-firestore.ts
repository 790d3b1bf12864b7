/**
 * A Firestore emulator of a test's own, on a free loopback port, that the test may kill
 * and start again (the shared stack's emulator is never touched). Data lives in the
 * emulator's memory, so a restart comes back empty, as after losing a node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { firestoreEmulatorCommand, portOpen } from '../../scripts/stack-lib.js';

export interface PrivateFirestore {
  /** host:port, as FIRESTORE_EMULATOR_HOST takes it. */
  host: string;
  /** Kills the emulator (SIGKILL to its process group) and waits until its port is closed. */
  kill(): Promise<void>;
  /** Starts it again on the same port and waits until it answers. */
  start(): Promise<void>;
  /** Where its output goes. */
  log: string;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`private Firestore emulator: ${what} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function answers(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

export async function startPrivateFirestore(name: string): Promise<PrivateFirestore> {
  const port = await freePort();
  const log = path.join(tmpdir(), `segflow-${name}-firestore-${port}.log`);
  let child: ChildProcess | undefined;

  const start = async () => {
    const { file, args } = firestoreEmulatorCommand(port);
    const out = createWriteStream(log, { flags: 'a' });
    await new Promise((r) => out.once('open', r));
    child = spawn(file, args, { detached: true, stdio: ['ignore', out, out] });
    child.unref();
    const started = child;
    await until('did not answer', async () => {
      if (started.exitCode !== null) throw new Error(`private Firestore emulator exited with ${started.exitCode}; see ${log}`);
      return answers(port);
    }, 120_000);
  };

  const kill = async () => {
    if (child?.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await until('port still open after SIGKILL', async () => !(await portOpen(port)), 30_000);
  };

  await start();
  return { host: `127.0.0.1:${port}`, kill, start, log };
}

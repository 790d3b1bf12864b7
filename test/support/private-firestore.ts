/**
 * A Firestore emulator of a test's own, on a free loopback port, that the test may kill
 * and start again (the shared stack's emulator is never touched). Data lives in the
 * emulator's memory, so a restart comes back empty, as after losing a node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { firestoreEmulatorCommand, freePort, httpOk, portOpen } from '../../scripts/stack-lib.js';

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

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`private Firestore emulator: ${what} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
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
    await until(
      'did not answer',
      async () => {
        if (started.exitCode !== null) throw new Error(`private Firestore emulator exited with ${started.exitCode}; see ${log}`);
        return httpOk(`http://127.0.0.1:${port}/`);
      },
      120_000,
    );
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

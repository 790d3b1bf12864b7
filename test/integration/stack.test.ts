import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../../core/config.js';
import { status, up } from '../../scripts/stack-lib.js';

test('stack up on a running stack is a no-op and every service is healthy', async () => {
  const before = await status();
  const r = await up(() => undefined);
  assert.deepEqual(r.started, []);
  assert.deepEqual(r.alreadyRunning.sort(), ['bigquery', 'firestore', 'gcs', 'pubsub', 'temporal']);
  const after = await status();
  assert.deepEqual(
    after.map((s) => [s.name, s.pid, s.healthy]),
    before.map((s) => [s.name, s.pid, true]),
  );
});

test('a port taken by another process gives an error naming the port and the service, and starts nothing', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as net.AddressInfo).port;
  const stackDir = mkdtempSync(path.join(os.tmpdir(), 'segflow-stack-'));
  try {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/stack.ts', 'up'], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      env: {
        ...process.env,
        SEGFLOW_STACK_DIR: stackDir,
        SEGFLOW_STACK_BIN_DIR: path.join(PROJECT_ROOT, '.stack', 'bin'),
        STACK_GCS_PORT: String(port),
      },
      timeout: 60_000,
    });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`port ${port} for the gcs service is already in use`));
    assert.doesNotMatch(r.stdout, /starting /);
  } finally {
    blocker.close();
    rmSync(stackDir, { recursive: true, force: true });
  }
});

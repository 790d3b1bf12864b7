/**
 * npm run stack:<install|up|down|status> — the local stack without Docker.
 */
import { Command } from 'commander';
import path from 'node:path';
import { PROJECT_ROOT } from '../core/config.js';
import { printTable } from './lib/table.js';
import { STACK_DIR, down, install, status, up } from './stack-lib.js';

const program = new Command('stack')
  .description('Install, start, stop and inspect the local stack (Temporal, Pub/Sub, Firestore, GCS and BigQuery emulators) on loopback.')
  .showHelpAfterError();

program
  .command('install')
  .description(`install missing stack binaries into ${path.relative(PROJECT_ROOT, STACK_DIR)}/bin (nothing global)`)
  .action(() => install());

program
  .command('up')
  .description('install if needed, then start every service that is not running and wait until all are healthy')
  .action(async () => {
    const t0 = Date.now();
    const r = await up();
    if (r.started.length === 0) console.log(`stack already running (${[...r.alreadyRunning, ...r.external].join(', ')}); nothing changed`);
    else console.log(`stack up in ${((Date.now() - t0) / 1000).toFixed(1)} s: started ${r.started.join(', ')}`);
    await printStatus();
  });

program
  .command('down')
  .description('stop the processes the stack started, and only those')
  .action(async () => {
    const stopped = await down();
    console.log(stopped.length === 0 ? 'no stack process was running' : `stopped ${stopped.join(', ')}`);
  });

program
  .command('status')
  .description('show each service, its pid, ports and health; exits 1 when any is down')
  .action(async () => {
    const ok = await printStatus();
    process.exitCode = ok ? 0 : 1;
  });

async function printStatus(): Promise<boolean> {
  const rows = await status();
  const state = (r: (typeof rows)[number]) =>
    r.external ? 'healthy (not started by the stack)' : r.healthy ? 'healthy' : r.running ? 'running, not healthy' : 'stopped';
  printTable(
    ['service', 'pid', 'ports', 'state'],
    rows.map((r) => [r.name, r.pid ?? '-', r.ports.join(','), state(r)]),
  );
  return rows.every((r) => r.healthy);
}

program.parseAsync().catch((err: unknown) => {
  console.error(`stack: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

/**
 * npm start — the main job: the local stack (installed on first use, unless the
 * configuration points elsewhere), the segflow worker, until Ctrl-C.
 */
import { Command } from 'commander';
import { loadConfig, usesLocalStack } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { startWorker } from '../workers/worker.js';
import { down, up } from './stack-lib.js';

const program = new Command('start')
  .description('Run segflow: bring up the local stack when configured for it, start the workers, run until Ctrl-C.')
  .option('--keep-stack', 'leave the local stack running on exit (it is stopped by default if this command started it)')
  .option('--no-stack', 'never start the local stack, even when the configuration points at loopback')
  .showHelpAfterError();
program.parse();
const opts = program.opts<{ keepStack?: boolean; stack: boolean }>();

process.on('uncaughtException', (err) => {
  console.error(`segflow: ${err.message}`);
  process.exit(1);
});

const config = loadConfig();
const logger = createLogger({ level: config.log.level, name: 'segflow' });

let startedServices: string[] = [];
if (opts.stack && usesLocalStack(config)) {
  startedServices = (await up((line) => logger.info(line))).started;
}
// The stack wrote .stack/env on first start: read the configuration again so it applies.
const runtimeConfig = loadConfig();
const worker = await startWorker(runtimeConfig, logger);

console.log(`
segflow is running
  Temporal UI   ${runtimeConfig.temporal.uiUrl}/namespaces/${runtimeConfig.temporal.namespace}/workflows
  task queue    ${runtimeConfig.temporal.taskQueue}
  metrics       http://127.0.0.1:${runtimeConfig.metrics.port}/metrics
Press Ctrl-C to stop.
`);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'stopping segflow');
  await worker.shutdown();
  if (startedServices.length > 0 && !opts.keepStack) await down((line) => logger.info(line), startedServices);
  logger.info('segflow stopped');
  process.exit(0);
}
process.once('SIGINT', () => void stop('SIGINT'));
process.once('SIGTERM', () => void stop('SIGTERM'));
await worker.done.catch((err: unknown) => {
  logger.error({ err }, 'worker failed');
  process.exit(1);
});

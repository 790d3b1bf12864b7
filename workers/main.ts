/**
 * npm run worker — one worker process on the segflow task queue, until SIGINT/SIGTERM.
 */
import { Command } from 'commander';
import { loadSegflowConfigOrExit } from './segmentation-config.js';
import { createLogger } from '../core/logger.js';
import { exitUsage } from '../scripts/lib/cli.js';
import { startWorker } from './worker.js';

new Command('npm run worker')
  .description(
    'Runs a segflow worker on TEMPORAL_TASK_QUEUE until interrupted. Configuration comes from the environment (see docs/configuration.md).',
  )
  .showHelpAfterError()
  .exitOverride(exitUsage)
  .parse();

const config = loadSegflowConfigOrExit();
const logger = createLogger({ level: config.log.level, name: 'segflow-worker' });
const running = await startWorker(config, logger);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    logger.info({ signal: sig }, 'shutting down worker');
    void running.shutdown();
  });
}
await running.done;
logger.info('worker stopped');

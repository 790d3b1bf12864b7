/**
 * npm run schema:events — writes the Event v1 JSON Schema for producers to
 * schemas/event-v1.schema.json; with --check, exits 1 if the committed file is stale.
 */
import { Command } from 'commander';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderEventJsonSchema } from '../core/events.js';

const EVENT_SCHEMA_PATH = fileURLToPath(new URL('../schemas/event-v1.schema.json', import.meta.url));

const program = new Command('schema:events')
  .description('Write the Event v1 JSON Schema (derived from the validator in core/events.ts) to schemas/event-v1.schema.json.')
  .option('--check', 'write nothing; exit 1 if the committed schema differs from the validator')
  .showHelpAfterError();
program.parse();
const opts = program.opts<{ check?: boolean }>();

async function main(): Promise<void> {
  const fresh = renderEventJsonSchema();
  if (opts.check === true) {
    const committed = await readFile(EVENT_SCHEMA_PATH, 'utf8').catch(() => '');
    if (committed !== fresh) {
      console.error(`${EVENT_SCHEMA_PATH} is stale: run \`npm run schema:events\` and commit the result`);
      process.exitCode = 1;
    }
    return;
  }
  await mkdir(fileURLToPath(new URL('../schemas/', import.meta.url)), { recursive: true });
  await writeFile(EVENT_SCHEMA_PATH, fresh);
  console.log(`wrote ${EVENT_SCHEMA_PATH}`);
}

await main();

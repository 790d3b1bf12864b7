/**
 * Writes the Event v1 JSON Schema for producers to schemas/event-v1.schema.json.
 *   tsx scripts/gen-event-schema.ts          regenerate
 *   tsx scripts/gen-event-schema.ts --check  exit 1 if the committed file is stale
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderEventJsonSchema } from '../core/events.js';

const EVENT_SCHEMA_PATH = fileURLToPath(new URL('../schemas/event-v1.schema.json', import.meta.url));

async function main(): Promise<void> {
  const fresh = renderEventJsonSchema();
  if (process.argv.includes('--check')) {
    const committed = await readFile(EVENT_SCHEMA_PATH, 'utf8').catch(() => '');
    if (committed !== fresh) {
      console.error(`${EVENT_SCHEMA_PATH} is stale: run \`tsx scripts/gen-event-schema.ts\` and commit the result`);
      process.exitCode = 1;
    }
    return;
  }
  await mkdir(fileURLToPath(new URL('../schemas/', import.meta.url)), { recursive: true });
  await writeFile(EVENT_SCHEMA_PATH, fresh);
  console.log(`wrote ${EVENT_SCHEMA_PATH}`);
}

await main();

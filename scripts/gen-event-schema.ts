/** npm run schema:events: writes the Event v1 JSON Schema for producers to schemas/event-v1.schema.json. */
import { fileURLToPath } from 'node:url';
import { loadConfigOrExit } from '../core/config.js';
import { buildEventContract, renderEventJsonSchema } from '../core/events.js';
import { runGeneratedFileCli } from './lib/generated-file.js';

await runGeneratedFileCli({
  script: 'schema:events',
  description:
    'Write the Event v1 JSON Schema (derived from the validator in core/events.ts, with SEGFLOW_EVENT_CONTRACT_EXTENSIONS applied) to schemas/event-v1.schema.json.',
  file: fileURLToPath(new URL('../schemas/event-v1.schema.json', import.meta.url)),
  render: () => renderEventJsonSchema(buildEventContract(loadConfigOrExit().ingest.contractExtensions)),
});

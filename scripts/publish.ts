/**
 * npm run publish -- --file events.ndjson — validate and publish v1 events.
 */
import { Command } from 'commander';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { closeGcpClients, createGcpClients } from '../stores/clients.js';
import { loadConfigOrExit } from '../core/config.js';
import { EventSchema, type EventInput } from '../core/events.js';
import { eventMessage, openTopic, publishAll, type OutgoingMessage } from './lib/publisher.js';

const program = new Command('publish')
  .description(
    'Validate events (one JSON object per line, the v1 contract in schemas/event-v1.schema.json) and publish them to the events topic.',
  )
  .requiredOption('-f, --file <path>', 'NDJSON file of events ("-" for standard input)')
  .option('--topic <name>', 'topic (default: SEGFLOW_EVENTS_TOPIC)')
  .option('--dry-run', 'validate only; publish nothing')
  .showHelpAfterError();
program.parse();
const opts = program.opts<{ file: string; topic?: string; dryRun?: boolean }>();

const config = loadConfigOrExit();
const input = opts.file === '-' ? process.stdin : createReadStream(opts.file);
input.on('error', (err: Error) => {
  console.error(`publish: cannot read ${opts.file}: ${err.message}`);
  process.exit(1);
});

// Validate the whole file first, so a bad line publishes nothing rather than half a file.
const messages: OutgoingMessage[] = [];
const problems: string[] = [];
let line = 0;
for await (const text of createInterface({ input, crlfDelay: Infinity })) {
  line++;
  if (text.trim() === '') continue;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    problems.push(`line ${line}: not JSON (${(err as Error).message})`);
    continue;
  }
  const parsed = EventSchema.safeParse(json);
  if (!parsed.success) {
    problems.push(`line ${line}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`).join('; ')}`);
    continue;
  }
  messages.push(eventMessage(json as EventInput));
}
if (problems.length > 0) {
  console.error(`publish: ${problems.length} invalid line(s) in ${opts.file}; nothing was published:`);
  for (const p of problems.slice(0, 20)) console.error(`  ${p}`);
  if (problems.length > 20) console.error(`  ... and ${problems.length - 20} more`);
  process.exit(1);
}
if (opts.dryRun) {
  console.log(`${messages.length} valid events; nothing published (--dry-run)`);
  process.exit(0);
}
const clients = createGcpClients(config);
const topic = await openTopic(clients.pubsub, opts.topic ?? config.pubsub.topic);
const ids = await publishAll(topic, messages, {
  total: messages.length,
  onProgress: (p) => process.stderr.write(`\rpublished ${p.published}/${p.total}`),
});
process.stderr.write('\n');
console.log(`published ${ids.length} events to ${topic.name}`);
await closeGcpClients(clients);

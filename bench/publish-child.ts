/**
 * Publisher process for bench:ingest: generates the same events for both sides
 * and publishes them when told to, so publishing does not share a process (and
 * an event loop) with the consumer being measured.
 * usage: tsx bench/publish-child.ts <topic> <events> <seed>
 */
import { Command } from 'commander';
import { createInterface } from 'node:readline';
import { closeGcpClients, createGcpClients } from '../stores/clients.js';
import { loadConfig } from '../core/config.js';
import { generateEvents, makePopulation } from '../demo/personas.js';
import { exitUsage, wholeNumber } from '../scripts/lib/cli.js';
import { eventMessage, openTopic, publishAll, type OutgoingMessage } from '../scripts/lib/publisher.js';

const program = new Command('publish-child')
  .description('bench:ingest\'s publisher: generates the events, prints "ready", publishes them when a line "go" arrives on stdin.')
  .argument('<topic>', 'Pub/Sub topic to publish to')
  .argument('<events>', 'how many events', wholeNumber(1))
  .argument('<seed>', 'seed of the generated population and events', wholeNumber(0))
  .showHelpAfterError()
  .exitOverride(exitUsage);
program.parse();
const [topicName, n, seed] = program.processedArgs as [string, number, number];
const clients = createGcpClients(loadConfig());
const topic = await openTopic(clients.pubsub, topicName);
const now = new Date();
const messages: OutgoingMessage[] = [];
for (const e of generateEvents(makePopulation(Math.ceil(n / 20), seed), {
  from: new Date(now.getTime() - 30 * 86_400_000),
  to: now,
  seed,
})) {
  messages.push(eventMessage(e));
  if (messages.length === n) break;
}
console.log('ready');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() === 'go') break;
}
await publishAll(topic, messages);
console.log(`published ${messages.length}`);
await closeGcpClients(clients);
// stdin is still open (the parent holds it), so leave explicitly.
process.exit(0);

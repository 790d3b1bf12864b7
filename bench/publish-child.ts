/**
 * Publisher process for bench:ingest: generates the same events for both sides
 * and publishes them when told to, so publishing does not share a process (and
 * an event loop) with the consumer being measured.
 * usage: tsx bench/publish-child.ts <topic> <events> <seed>
 */
import { createInterface } from 'node:readline';
import { closeGcpClients, createGcpClients } from '../stores/clients.js';
import { loadConfig } from '../core/config.js';
import { generateEvents, makePopulation } from '../core/personas.js';
import { eventMessage, openTopic, publishAll, type OutgoingMessage } from '../scripts/lib/publisher.js';

const [topicName, count, seedArg] = process.argv.slice(2);
const n = Number(count);
const seed = Number(seedArg);
if (!topicName || !Number.isInteger(n) || !Number.isInteger(seed)) {
  console.error('usage: tsx bench/publish-child.ts <topic> <events> <seed>');
  process.exit(2);
}
const clients = createGcpClients(loadConfig());
const topic = await openTopic(clients.pubsub, topicName);
const now = new Date();
const messages: OutgoingMessage[] = [];
for (const e of generateEvents(makePopulation(Math.ceil(n / 20), seed), { from: new Date(now.getTime() - 30 * 86_400_000), to: now, seed })) {
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

/**
 * npm run demo:traffic -- --customers 10000 --rate 500 — publish realistic events
 * for a population drawn from latent personas, so segmentation has structure to find.
 */
import { Command, InvalidArgumentError } from 'commander';
import { closeGcpClients, createGcpClients } from '../stores/clients.js';
import { loadConfigOrExit } from '../core/config.js';
import { generateEvents, makePopulation } from '../demo/personas.js';
import { eventMessage, openTopic, publishAll } from './lib/publisher.js';

function positiveInt(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0)
      throw new InvalidArgumentError(`${name} must be a whole number above 0, found ${JSON.stringify(v)}`);
    return n;
  };
}

const program = new Command('demo:traffic')
  .description(
    'Publish demo events (v1 contract) for customers drawn from personas: loyal high spenders, bargain hunters, window shoppers, email-engaged, app-first.',
  )
  .option('--customers <n>', 'population size', positiveInt('--customers'), 1000)
  .option('--rate <n>', 'events per second (0 = as fast as possible)', (v) => (v === '0' ? 0 : positiveInt('--rate')(v)), 500)
  .option('--days <n>', 'event times spread over the last N days', positiveInt('--days'), 90)
  .option('--events-per-customer <n>', 'mean events per customer', positiveInt('--events-per-customer'), 30)
  .option('--limit <n>', 'stop after N events', positiveInt('--limit'))
  .option('--seed <n>', 'random seed (same seed, same traffic)', positiveInt('--seed'), 42)
  .showHelpAfterError();
program.parse();
const opts = program.opts<{ customers: number; rate: number; days: number; eventsPerCustomer: number; limit?: number; seed: number }>();

const config = loadConfigOrExit();
const clients = createGcpClients(config);
const topic = await openTopic(clients.pubsub, config.pubsub.topic);
const now = new Date();
const population = makePopulation(opts.customers, opts.seed);
const events = [
  ...generateEvents(population, {
    from: new Date(now.getTime() - opts.days * 86_400_000),
    to: now,
    seed: opts.seed,
    eventsPerCustomer: opts.eventsPerCustomer,
  }),
].sort((a, b) => a.ts.localeCompare(b.ts));
const chosen = opts.limit ? events.slice(0, opts.limit) : events;
console.log(`publishing ${chosen.length} events for ${opts.customers} customers to ${topic.name}${opts.rate ? ` at ${opts.rate}/s` : ''}`);
const t0 = Date.now();
await publishAll(topic, chosen.map(eventMessage), {
  total: chosen.length,
  ratePerSecond: opts.rate || undefined,
  onProgress: (p) => {
    const secs = (Date.now() - t0) / 1000;
    process.stderr.write(`\rpublished ${p.published}/${p.total} (${(p.published / Math.max(secs, 0.001)).toFixed(0)}/s)   `);
  },
});
process.stderr.write('\n');
console.log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
await closeGcpClients(clients);

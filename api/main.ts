/**
 * npm run api — the profile API on SEGFLOW_API_PORT until SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { createGcpClients } from '../stores/clients.js';
import { loadConfigOrExit } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { API_DEFAULTS, buildProfileApi } from './server.js';
import { CACHE_DEFAULTS } from './cache.js';
import { createFirestoreProfileStore } from './firestore-store.js';

const USAGE = `usage: npm run api [-- options]

Serves online customer profiles from Firestore (collection SEGFLOW_FIRESTORE_PROFILES):
  GET /v1/customers/<id>/profile   Authorization: Bearer <one of SEGFLOW_API_TOKENS>
  GET /healthz                     no authentication; reports whether Firestore answers
When Firestore is slow or down, the last good profile of a customer is served
from an in-process cache with "stale": true.

options:
  --host <addr>                  listen address (default 127.0.0.1 locally, 0.0.0.0 in production)
  --port <n>                     listen port (default SEGFLOW_API_PORT, 8080)
  --latency-budget-ms <n>        wait this long for Firestore before serving a cached profile (default ${CACHE_DEFAULTS.latencyBudgetMs})
  --uncached-timeout-ms <n>      wait this long for Firestore when nothing is cached, then 503 (default ${CACHE_DEFAULTS.uncachedTimeoutMs})
  --cache-max-entries <n>        customers kept in the cache (default ${CACHE_DEFAULTS.maxEntries})
  --rate-limit <n>               requests per client IP per minute, 0 for none (default ${API_DEFAULTS.rateLimit.max})
  --trust-proxy                  take client IPs from X-Forwarded-For (only behind a load balancer)
  -h, --help                     this text

Other settings come from the environment (see the configuration table in README.md).`;

function fail(message: string): never {
  console.error(`npm run api: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function parse() {
  return parseArgs({
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'latency-budget-ms': { type: 'string' },
      'uncached-timeout-ms': { type: 'string' },
      'cache-max-entries': { type: 'string' },
      'rate-limit': { type: 'string' },
      'trust-proxy': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
}
function parseOrExit() {
  try {
    return parse();
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
}
const args = parseOrExit();
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

function wholeNumber(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) fail(`--${name}: expected a whole number >= ${min}, found ${JSON.stringify(value)}`);
  return n;
}

const config = loadConfigOrExit();

const port = wholeNumber('port', args.port, 0) ?? config.api.port;
const host = args.host ?? (config.env === 'production' ? '0.0.0.0' : '127.0.0.1');
const rate = wholeNumber('rate-limit', args['rate-limit'], 0);
const logger = createLogger({ level: config.log.level, name: 'segflow-api' });
const clients = createGcpClients(config);
const store = createFirestoreProfileStore({ firestore: clients.firestore, config, logger });

const app = buildProfileApi({
  store,
  tokens: config.api.tokens,
  logger,
  cache: {
    latencyBudgetMs: wholeNumber('latency-budget-ms', args['latency-budget-ms'], 1),
    uncachedTimeoutMs: wholeNumber('uncached-timeout-ms', args['uncached-timeout-ms'], 1),
    maxEntries: wholeNumber('cache-max-entries', args['cache-max-entries'], 1),
  },
  rateLimit: rate === 0 ? false : rate === undefined ? undefined : { max: rate, timeWindowMs: 60_000 },
  trustProxy: args['trust-proxy'] ?? false,
});

// Open the Firestore channel before the first request, which would otherwise pay
// for it and miss its latency budget. A failure is not fatal: reads recover on their own.
try {
  await Promise.race([store.ping?.(), new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5_000).unref())]);
} catch (err) {
  logger.warn({ error: err instanceof Error ? err.message : String(err) }, 'Firestore did not answer at startup; serving will start anyway');
}

await app.listen({ host, port });
logger.info({ collection: config.firestore.profiles, tokenCount: config.api.tokens.length }, 'profile API ready');

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    logger.info({ signal: sig }, 'shutting down profile API');
    // No firestore.terminate(): reads still retrying against an unreachable
    // Firestore would then reject from inside the client after we exit anyway.
    void app.close().then(() => process.exit(0));
  });
}

/**
 * npm run api — the profile API on SEGFLOW_API_PORT until SIGINT/SIGTERM.
 */
import { Command, InvalidArgumentError } from 'commander';
import { createGcpClients } from '../stores/clients.js';
import { loadConfigOrExit } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { API_DEFAULTS, DOCS_PATH, EXPLORER_PATH, buildProfileApi } from './server.js';
import { CACHE_DEFAULTS } from './cache.js';
import { createFirestoreProfileStore } from './firestore-store.js';
import { createRegistrySegmentsSource, createTemporalRunsReader } from './segments-store.js';

/** A whole number from `min` on (api/ may not import scripts/lib/cli.ts, whose twin this is). */
const wholeNumber = (min: number) => (value: string) => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < min)
    throw new InvalidArgumentError(`expected a whole number >= ${min}, found ${JSON.stringify(value)}`);
  return n;
};

const program = new Command('npm run api')
  .description(
    'Serves online customer profiles from Firestore (collection SEGFLOW_FIRESTORE_PROFILES), the segments API and the segment explorer page. ' +
      'When Firestore is slow or down, the last good profile of a customer is served from an in-process cache with "stale": true.',
  )
  .option('--host <addr>', 'listen address (default 127.0.0.1 locally, 0.0.0.0 in production)')
  .option('--port <n>', 'listen port (default SEGFLOW_API_PORT, 8080)', wholeNumber(0))
  .option(
    '--latency-budget-ms <n>',
    `wait this long for Firestore before serving a cached profile (default ${CACHE_DEFAULTS.latencyBudgetMs})`,
    wholeNumber(1),
  )
  .option(
    '--uncached-timeout-ms <n>',
    `wait this long for Firestore when nothing is cached, then 503 (default ${CACHE_DEFAULTS.uncachedTimeoutMs})`,
    wholeNumber(1),
  )
  .option('--cache-max-entries <n>', `customers kept in the cache (default ${CACHE_DEFAULTS.maxEntries})`, wholeNumber(1))
  .option('--rate-limit <n>', `requests per client IP per minute, 0 for none (default ${API_DEFAULTS.rateLimit.max})`, wholeNumber(0))
  .option('--trust-proxy', 'take client IPs from X-Forwarded-For (only behind a load balancer)')
  .addHelpText(
    'after',
    `
Endpoints:
  GET /v1/customers/<id>/profile   Authorization: Bearer <one of SEGFLOW_API_TOKENS>
  POST /v1/profiles:batchGet       {"ids": [...]} (up to 100), the same token
  GET /v1/customers/<id>/explain   why the customer sits in its segment
  GET /v1/models, /v1/models/<version>, /v1/segments[?version=<v>], /v1/segments/<id>/customers,
      /v1/models/<a>/transitions/<b>, /v1/stability, /v1/runs   the same token
  GET /healthz                     no authentication; reports whether Firestore answers
  GET ${EXPLORER_PATH}/                   the segment explorer (asks for the token in the page)
  GET ${DOCS_PATH}, ${DOCS_PATH}/json            the OpenAPI document, interactive and as JSON

Other settings come from the environment (see docs/configuration.md).`,
  )
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
program.parse();
const args = program.opts<{
  host?: string;
  port?: number;
  latencyBudgetMs?: number;
  uncachedTimeoutMs?: number;
  cacheMaxEntries?: number;
  rateLimit?: number;
  trustProxy?: boolean;
}>();

const config = loadConfigOrExit();

const port = args.port ?? config.api.port;
const host = args.host ?? (config.env === 'production' ? '0.0.0.0' : '127.0.0.1');
const rate = args.rateLimit;
const logger = createLogger({ level: config.log.level, name: 'segflow-api' });
const clients = createGcpClients(config);
const store = createFirestoreProfileStore({ firestore: clients.firestore, config, logger });

const app = buildProfileApi({
  store,
  tokens: config.api.tokens,
  logger,
  cache: {
    latencyBudgetMs: args.latencyBudgetMs,
    uncachedTimeoutMs: args.uncachedTimeoutMs,
    maxEntries: args.cacheMaxEntries,
  },
  rateLimit: rate === 0 ? false : rate === undefined ? undefined : { max: rate, timeWindowMs: 60_000 },
  trustProxy: args.trustProxy ?? false,
  segments: createRegistrySegmentsSource({
    bigquery: clients.bigquery,
    storage: clients.storage,
    config,
    runs: createTemporalRunsReader(config),
  }),
});

// Open the Firestore channel before the first request, which would otherwise pay
// for it and miss its latency budget. A failure is not fatal: reads recover on their own.
try {
  await Promise.race([
    store.ping?.(),
    new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5_000).unref()),
  ]);
} catch (err) {
  logger.warn(
    { error: err instanceof Error ? err.message : String(err) },
    'Firestore did not answer at startup; serving will start anyway',
  );
}

await app.listen({ host, port });
logger.info(
  {
    collection: config.firestore.profiles,
    tokenCount: config.api.tokens.length,
    explorer: `http://${host}:${port}${EXPLORER_PATH}/`,
    docs: `http://${host}:${port}${DOCS_PATH}`,
  },
  'profile API ready',
);

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    logger.info({ signal: sig }, 'shutting down profile API');
    // No firestore.terminate(): reads still retrying against an unreachable
    // Firestore would then reject from inside the client after we exit anyway.
    void app.close().then(() => process.exit(0));
  });
}

/**
 * The Temporal time-skipping test environment for workflow tests, started from the binary the
 * local stack installs (tests never download one).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { SearchAttributeType } from '@temporalio/common';
import { encodeSearchAttributeIndexedValueType, type SearchAttributeKey } from '@temporalio/common/lib/search-attributes.js';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DAG_SEARCH_ATTRIBUTES, SCHEDULED_START_TIME_SEARCH_ATTRIBUTE } from '../../workflows/dag-messages.js';

export const TEST_SERVER_PATH = fileURLToPath(new URL('../../.stack/bin/temporal-test-server', import.meta.url));

/**
 * Search attributes to register: the test server rejects unknown ones. It has no Schedule API,
 * so TemporalScheduledStartTime (built in on real servers) is registered for tests that set it
 * themselves to simulate a scheduled start.
 */
export const TEST_SEARCH_ATTRIBUTES: readonly SearchAttributeKey<SearchAttributeType>[] = [
  ...DAG_SEARCH_ATTRIBUTES,
  SCHEDULED_START_TIME_SEARCH_ATTRIBUTE,
];

export interface TimeSkippingEnvOptions {
  readonly searchAttributes?: readonly SearchAttributeKey<SearchAttributeType>[];
}

export async function createTimeSkippingEnv(options: TimeSkippingEnvOptions = {}): Promise<TestWorkflowEnvironment> {
  if (!existsSync(TEST_SERVER_PATH)) {
    throw new Error(`Temporal test server not found at ${TEST_SERVER_PATH}; run \`npm run stack:install\` first.`);
  }
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: TEST_SERVER_PATH } },
  });
  try {
    const attributes = options.searchAttributes ?? TEST_SEARCH_ATTRIBUTES;
    if (attributes.length > 0) {
      await env.connection.operatorService.addSearchAttributes({
        namespace: env.namespace ?? 'default',
        searchAttributes: Object.fromEntries(attributes.map((k) => [k.name, encodeSearchAttributeIndexedValueType(k.type) as number])),
      });
    }
  } catch (err) {
    await env.teardown();
    throw err;
  }
  return env;
}

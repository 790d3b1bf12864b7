/**
 * reclassifyCustomer stays replay-safe: recorded histories replay against the
 * current workflow code without a nondeterminism error.
 *
 * Fixtures: runs on the local stack (four purchases, two segment changes with a webhook
 * each, then the idle end), saved as JSON.stringify(await handle.fetchHistory()), the
 * protobufjs object form. (The proto3 JSON of `temporal workflow show -o json` does not
 * load here: @temporalio/common carries its own copy of protobufjs, whose JSON reader
 * rejects the types of @temporalio/proto's.)
 *   reclassify-customer-two-activities  a run of the code before SINGLE_STEP_PATCH
 *                                       (prepare + write local activities, a timer per step)
 *   reclassify-customer-single-step     a run of the current code (one local activity, one idle timer)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import proto from '@temporalio/proto';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';

const { History } = proto.temporal.api.history.v1;

const WORKFLOWS_PATH = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));
const fixture = (name: string) =>
  JSON.parse(readFileSync(fileURLToPath(new URL(`./fixtures/${name}.history.json`, import.meta.url)), 'utf8')) as {
    events: Array<{ eventType: string }>;
  };

describe('reclassifyCustomer replay', async () => {
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
  });

  for (const [name, expectMarkers] of [
    ['reclassify-customer-two-activities', 8],
    ['reclassify-customer-single-step', 3],
  ] as const) {
    it(`replays ${name} with the current code`, async () => {
      const history = fixture(name);
      const types = history.events.map((e) => e.eventType);
      // The fixture is what its name says: two or three markers per step on the old path, one per step plus the patch on the new one.
      assert.equal(types.filter((t) => t === 'EVENT_TYPE_MARKER_RECORDED').length, expectMarkers);
      assert.equal(types.at(-1), 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED');
      await Worker.runReplayHistory({ workflowBundle }, History.fromObject(history), `${name}-replay`);
    });
  }
});

import { ApplicationFailure } from '@temporalio/common';
import assert from 'node:assert/strict';

/** The ApplicationFailure a promise rejects with; fails the test if it resolves or rejects with anything else. */
export async function failureOf(p: Promise<unknown>, what = 'a failure'): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${what}`);
}

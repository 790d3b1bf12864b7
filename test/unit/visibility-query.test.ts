import assert from 'node:assert/strict';
import { test } from 'node:test';
import { visibilityLiteral } from '../../core/visibility-query.js';

test('a visibility literal is quoted and cannot be ended by the value it holds', () => {
  assert.equal(visibilityLiteral('nightly_segmentation'), "'nightly_segmentation'");
  assert.equal(visibilityLiteral("x' OR WorkflowType = 'y"), "'x\\' OR WorkflowType = \\'y'");
  assert.equal(visibilityLiteral('a\\'), "'a\\\\'");
});

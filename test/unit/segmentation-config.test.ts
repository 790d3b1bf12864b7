import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, SEGMENTATION_SETTINGS, parseConfig } from '../../core/config.js';
import { DEFAULT_SEGMENT_FEATURES } from '../../core/segmentation/features.js';
import { readSegmentationFile } from '../../workers/segmentation-config.js';

const checkedIn = readSegmentationFile({});

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

test('config/segmentation.json holds the built-in settings, every field of the segmentation section', () => {
  assert.ok(checkedIn, 'config/segmentation.json is checked in');
  assert.deepEqual(parseConfig({}, checkedIn).segmentation, parseConfig({}).segmentation);
  assert.deepEqual(parseConfig({}, checkedIn).segmentation.features, DEFAULT_SEGMENT_FEATURES);
  const fields = (o: object, prefix = ''): string[] =>
    Object.entries(o).flatMap(([k, v]) =>
      typeof v === 'object' && v !== null && !Array.isArray(v) ? fields(v as object, `${prefix}${k}.`) : [`${prefix}${k}`],
    );
  // Every setting of the section is in the file except the sample size, which defaults to a share of the customers.
  assert.deepEqual(
    fields(parseConfig({}).segmentation).sort(),
    Object.keys(SEGMENTATION_SETTINGS)
      .filter((f) => f !== 'sampleSize')
      .sort(),
  );
});

test('a setting from the file is used, and its environment variable overrides it', () => {
  const file = { path: 'seg.json', content: { kMin: 3, kMax: 7, thresholds: { maxChangedShare: 0.3 }, promotionPolicy: 'hold' } };
  const fromFile = parseConfig({}, file).segmentation;
  assert.equal(fromFile.kMin, 3);
  assert.equal(fromFile.kMax, 7);
  assert.equal(fromFile.thresholds.maxChangedShare, 0.3);
  assert.equal(fromFile.thresholds.minAdjustedRandIndex, 0.7, 'unset in the file: the default');
  assert.equal(fromFile.promotionPolicy, 'hold');
  const overridden = parseConfig(
    { SEGFLOW_SEGMENT_K_MAX: '9', SEGFLOW_SEGMENT_FEATURES: '[{"name":"monetary","weight":1}]' },
    file,
  ).segmentation;
  assert.equal(overridden.kMax, 9);
  assert.equal(overridden.kMin, 3);
  assert.deepEqual(overridden.features, [{ name: 'monetary', weight: 1 }]);
});

test('one error names every bad field of the file, by its field name', () => {
  const problems = problemsOf(() =>
    parseConfig(
      {},
      {
        path: 'seg.json',
        content: {
          kMin: 0,
          kmax: 5,
          cohesion: { minSilhouette: 2 },
          thresholds: { allowSegmentChanges: 'yes' },
          promotionPolicy: 'yolo',
          features: [
            { name: 'monetary', weight: 1 },
            { name: 'country', kind: 'categorical', weight: -1, levels: ['a', 'b'] },
          ],
        },
      },
    ),
  );
  const text = problems.join('\n');
  for (const field of [
    'seg.json: kMin',
    'seg.json: kmax: unknown setting',
    'seg.json: cohesion.minSilhouette',
    'seg.json: thresholds.allowSegmentChanges: expected a JSON boolean',
    'seg.json: promotionPolicy',
    'seg.json: features.1.weight: expected a weight > 0',
    'seg.json: features.1.levels: levels applies to ordinal features only',
  ]) {
    assert.ok(text.includes(field), `${field} in:\n${text}`);
  }
  assert.equal(problems.length, 7, text);
  // A bad variable that overrides the file is named as the variable.
  assert.match(
    problemsOf(() => parseConfig({ SEGFLOW_SEGMENT_K_MIN: 'x' }, { path: 'seg.json', content: { kMin: 2 } })).join('\n'),
    /^SEGFLOW_SEGMENT_K_MIN:/,
  );
});

test('SEGFLOW_SEGMENTATION_CONFIG names the file; a missing or malformed file is a ConfigError', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'segflow-seg-'));
  const good = path.join(dir, 'good.json');
  writeFileSync(good, JSON.stringify({ kMax: 6 }));
  assert.equal(parseConfig({}, readSegmentationFile({ SEGFLOW_SEGMENTATION_CONFIG: good })).segmentation.kMax, 6);
  const bad = path.join(dir, 'bad.json');
  writeFileSync(bad, '{ kMax: 6');
  assert.match(problemsOf(() => readSegmentationFile({ SEGFLOW_SEGMENTATION_CONFIG: bad })).join(''), /bad\.json: not valid JSON/);
  assert.match(
    problemsOf(() => readSegmentationFile({ SEGFLOW_SEGMENTATION_CONFIG: path.join(dir, 'none.json') })).join(''),
    /does not exist/,
  );
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { qualifyMartsTables } from '../../stores/model-registry.js';

test('the registry qualifies every bare marts table its queries name, and nothing else', () => {
  const q = (sql: string) => qualifyMartsTables(sql, 'proj', 'marts_x');
  assert.equal(
    q(
      'SELECT a.segment_id FROM (SELECT customer_id, segment_id FROM customer_segments WHERE model_version = @from) AS a FULL OUTER JOIN (SELECT 1) AS b',
    ),
    'SELECT a.segment_id FROM (SELECT customer_id, segment_id FROM `proj.marts_x.customer_segments` WHERE model_version = @from) AS a FULL OUTER JOIN (SELECT 1) AS b',
  );
  assert.equal(
    q('SELECT n.x FROM customer_segments AS n\n JOIN customer_segments AS o ON o.customer_id = n.customer_id'),
    'SELECT n.x FROM `proj.marts_x.customer_segments` AS n\n JOIN `proj.marts_x.customer_segments` AS o ON o.customer_id = n.customer_id',
  );
  assert.equal(q('INSERT INTO segment_promotions (v) VALUES (@v)'), 'INSERT INTO `proj.marts_x.segment_promotions` (v) VALUES (@v)');
  assert.equal(
    q('UPDATE segment_models SET is_current = TRUE WHERE TRUE'),
    'UPDATE `proj.marts_x.segment_models` SET is_current = TRUE WHERE TRUE',
  );
  assert.equal(q('SELECT * FROM `other.ds.t`'), 'SELECT * FROM `other.ds.t`');
  assert.equal(q('SELECT * FROM UNNEST(@ids) AS id'), 'SELECT * FROM UNNEST(@ids) AS id');
});

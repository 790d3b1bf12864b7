-- config: materialized=incremental, strategy=delete+insert, unique_key=customer_id, dataset=marts
-- config: partition_by=DATE(ts), cluster_by=customer_id
--
-- fct_orders: one row per order_id, from purchase events. Amounts are NUMERIC (exact money).
-- When several purchase events carry the same order_id, the one with the latest event time
-- (ties: greatest event_id) is the order: later events are corrections.
--
-- Every fact is a function of its customer's whole staged history, so each run rebuilds the
-- facts of the customers touched by its interval (staged rows with _arrival_hour in the
-- interval) and replaces their rows (delete+insert on customer_id). A late event is just
-- another touched customer. History only grows, so a touched customer never loses rows.
WITH touched AS (
  SELECT DISTINCT customer_id
  FROM {{ ref('stg_events') }}
  WHERE _arrival_hour >= @interval_start AND _arrival_hour < @interval_end
)
SELECT
  JSON_VALUE(properties, '$.order_id') AS order_id,
  customer_id,
  ts,
  SAFE_CAST(JSON_VALUE(properties, '$.amount') AS NUMERIC) AS amount,
  JSON_VALUE(properties, '$.currency') AS currency,
  event_id
FROM {{ ref('stg_events') }}
WHERE type = 'purchase'
  AND customer_id IN (SELECT customer_id FROM touched)
QUALIFY ROW_NUMBER() OVER (PARTITION BY JSON_VALUE(properties, '$.order_id') ORDER BY ts DESC, event_id DESC) = 1

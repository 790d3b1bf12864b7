-- config: materialized=incremental, strategy=delete+insert, unique_key=customer_id, dataset=marts
-- config: partition_by=DATE(started_at), cluster_by=customer_id
--
-- fct_app_sessions: one row per app_session event (the app reports whole sessions):
-- start time, duration_ms and platform. Rebuilt per touched customer (delete+insert on customer_id).
WITH touched AS (
  SELECT DISTINCT customer_id
  FROM {{ ref('stg_events') }}
  WHERE _arrival_hour >= @interval_start AND _arrival_hour < @interval_end
)
SELECT
  event_id AS app_session_id,
  customer_id,
  ts AS started_at,
  SAFE_CAST(JSON_VALUE(properties, '$.duration_ms') AS INT64) AS duration_ms,
  JSON_VALUE(properties, '$.platform') AS platform
FROM {{ ref('stg_events') }}
WHERE type = 'app_session'
  AND customer_id IN (SELECT customer_id FROM touched)

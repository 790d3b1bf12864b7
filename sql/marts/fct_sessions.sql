-- config: materialized=incremental, strategy=delete+insert, unique_key=customer_id, dataset=marts
-- config: partition_by=DATE(session_start), cluster_by=customer_id
--
-- fct_sessions: web sessions. A customer's page_view and click events, in event-time order
-- (ties: event_id), form one session until a gap of 30 minutes or more between two
-- consecutive events; that event starts a new session. Per session:
--   session_start / session_end   first and last event time
--   events, page_views, clicks    counts
--   total_page_duration_ms        sum of the page views' duration_ms
--   avg_time_on_page_ms           average duration_ms of the session's page views (NULL without page views)
-- session_id = customer_id || '/' || microseconds of session_start since the epoch.
--
-- Rebuilt per touched customer from the whole history (delete+insert on customer_id): a late
-- event can join or split sessions.
WITH touched AS (
  SELECT DISTINCT customer_id
  FROM {{ ref('stg_events') }}
  WHERE _arrival_hour >= @interval_start AND _arrival_hour < @interval_end
),
web AS (
  SELECT
    customer_id,
    event_id,
    type,
    ts,
    IF(type = 'page_view', SAFE_CAST(JSON_VALUE(properties, '$.duration_ms') AS INT64), NULL) AS duration_ms
  FROM {{ ref('stg_events') }}
  WHERE type IN ('page_view', 'click')
    AND customer_id IN (SELECT customer_id FROM touched)
),
gaps AS (
  SELECT
    *,
    LAG(ts) OVER (PARTITION BY customer_id ORDER BY ts, event_id) AS previous_ts
  FROM web
),
numbered AS (
  SELECT
    *,
    SUM(IF(previous_ts IS NULL OR TIMESTAMP_DIFF(ts, previous_ts, MILLISECOND) >= 1800000, 1, 0))
      OVER (PARTITION BY customer_id ORDER BY ts, event_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session_number
  FROM gaps
)
SELECT
  CONCAT(customer_id, '/', CAST(UNIX_MICROS(MIN(ts)) AS STRING)) AS session_id,
  customer_id,
  MIN(ts) AS session_start,
  MAX(ts) AS session_end,
  COUNT(*) AS events,
  COUNTIF(type = 'page_view') AS page_views,
  COUNTIF(type = 'click') AS clicks,
  SUM(duration_ms) AS total_page_duration_ms,
  AVG(duration_ms) AS avg_time_on_page_ms
FROM numbered
GROUP BY customer_id, session_number

-- config: materialized=incremental, strategy=delete+insert, unique_key=customer_id, dataset=marts
-- config: cluster_by=customer_id
--
-- fct_email_interactions: one row per (customer_id, campaign_id) the customer opened or clicked:
-- opens and clicks (event counts), first open, first click, first and last interaction.
-- Rebuilt per touched customer from the whole history (delete+insert on customer_id).
WITH touched AS (
  SELECT DISTINCT customer_id
  FROM {{ ref('stg_events') }}
  WHERE _arrival_hour >= @interval_start AND _arrival_hour < @interval_end
)
SELECT
  customer_id,
  JSON_VALUE(properties, '$.campaign_id') AS campaign_id,
  COUNTIF(type = 'email_open') AS opens,
  COUNTIF(type = 'email_click') AS clicks,
  MIN(IF(type = 'email_open', ts, NULL)) AS first_open_at,
  MIN(IF(type = 'email_click', ts, NULL)) AS first_click_at,
  MIN(ts) AS first_interaction_at,
  MAX(ts) AS last_interaction_at
FROM {{ ref('stg_events') }}
WHERE type IN ('email_open', 'email_click')
  AND customer_id IN (SELECT customer_id FROM touched)
GROUP BY customer_id, campaign_id

-- config: materialized=incremental, strategy=merge, unique_key=event_id, dataset=staging, alias=events
-- config: partition_by=DATE(ts), cluster_by=customer_id
-- config: merge_update_if=S.received_at > T.received_at OR (S.received_at = T.received_at AND S.message_id > T.message_id)
--
-- staging.events: one row per event_id, the delivery received last (ties: the greater
-- message_id). Pub/Sub delivers at least once, so the lake holds redeliveries; here they
-- collapse so no event counts twice downstream.
--
-- Incremental on purpose: each run MERGEs only the rows loaded for its arrival interval
-- (raw.events._arrival_hour in [@interval_start, @interval_end)). "Latest received_at wins" is
-- a max, so the result does not depend on the order in which intervals run or rerun; a full
-- rebuild would give the same table at the cost of reading all of raw.events every hour.
--
-- _arrival_hour is the lake partition of the winning delivery. Downstream models recompute
-- the customers whose staged rows carry their interval's arrival hours ("touched customers").
SELECT
  event_id,
  customer_id,
  type,
  ts,
  properties,
  message_id,
  publish_time,
  received_at,
  _arrival_hour
FROM {{ source('raw', 'events') }}
WHERE _arrival_hour >= @interval_start AND _arrival_hour < @interval_end
QUALIFY ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY received_at DESC, message_id DESC) = 1

-- config: materialized=incremental, strategy=merge, unique_key=customer_id, dataset=marts
-- config: cluster_by=customer_id
--
-- marts.customer_features: one row per customer. Each run recomputes the customers touched by
-- its interval (staged events with _arrival_hour in [@interval_start, @interval_end)) from their
-- WHOLE history and upserts them; a late event changes its customer like any other event.
-- Rows of customers the interval did not touch keep the values of their last recompute
-- (features_as_of says when; recency in particular is as of that moment).
--
-- Definitions. "as_of_date" is the UTC date of the interval's last instant,
-- DATE(@interval_end - 1 microsecond). "Events" are all staged events of any type.
--   first_seen_at         earliest event time
--   tenure_days           DATE_DIFF(as_of_date, DATE(first_seen_at), DAY), at least 0
--   observed_days         tenure_days + 1 (the days since first seen, both ends included)
--   days_active           distinct UTC dates with at least one event
--   engagement_frequency  days_active / observed_days (share of observed days with activity)
--   web_sessions          sessions in fct_sessions
--   sessions_per_week     web_sessions * 7 / GREATEST(observed_days, 7) (under a week counts as one week)
--   pages_per_session     page views / web_sessions (NULL without sessions)
--   avg_time_on_page_ms   mean duration_ms over all page views (NULL without page views)
--   cart_adds             add_to_cart events
--   app_sessions          rows in fct_app_sessions
-- Demographics (profile_update events): each of age, gender, country, income_band is the latest
-- non-NULL value by event time (ties: greatest event_id), so a partial update does not erase
-- the other fields. NULL when never given.
-- RFM, from fct_orders:
--   frequency             orders (0 for non-buyers)
--   monetary              sum of amounts (0 for non-buyers; one currency assumed)
--   recency_days          DATE_DIFF(as_of_date, DATE(last order time), DAY), at least 0; NULL for non-buyers
--   r_score, f_score, m_score: quintiles over ALL buyers (every customer in fct_orders):
--     score = CEIL(5 * k / n), n = number of buyers, k = number of buyers whose value is <= this
--     customer's (for recency: >=, so the most recent buyers score 5). Equal values get equal
--     scores. Computed with integers: DIV(5 * k + n - 1, n). Non-buyers score 1 on all three
--     (the worst score, below every buyer in spirit; the online profile requires 1..5).
-- Email (no "email sent" event exists, so receipt is inferred):
--   a campaign's launch time = its first interaction (open or click) by anyone;
--   campaigns_received    campaigns the customer interacted with, plus campaigns launched at
--                         or after the customer's first_seen_at
--   campaigns_opened      campaigns the customer opened or clicked (a click proves the open even
--                         when the tracking pixel was blocked)
--   campaigns_clicked     campaigns the customer clicked
--   email_open_rate       campaigns_opened / campaigns_received (NULL when nothing was received)
--   email_ctr             campaigns_clicked / campaigns_opened (click-to-open; NULL without opens)
-- features_as_of and updated_at are @interval_end: the logical time of the run, so a rerun of
-- the same interval writes identical rows.
--
-- Emulator substitutions (goccy bigquery-emulator 0.8.1), valid GoogleSQL on BigQuery too:
--   latest non-NULL value: ARRAY_AGG(x IGNORE NULLS ORDER BY ... LIMIT 1)[SAFE_OFFSET(0)]
--     instead of LAST_VALUE(x IGNORE NULLS) OVER (...), which the emulator answers with NULL;
--   quintiles: COUNT(*) OVER (ORDER BY x) (peers included) instead of NTILE(5), which splits
--     equal values across tiles arbitrarily (a choice, not only a workaround).
WITH touched AS (
  SELECT DISTINCT customer_id
  FROM {{ ref('stg_events') }}
  WHERE _arrival_hour >= @interval_start AND _arrival_hour < @interval_end
),
events AS (
  SELECT customer_id, event_id, type, ts, properties
  FROM {{ ref('stg_events') }}
  WHERE customer_id IN (SELECT customer_id FROM touched)
),
activity AS (
  SELECT
    customer_id,
    MIN(ts) AS first_seen_at,
    COUNT(DISTINCT DATE(ts)) AS days_active,
    COUNTIF(type = 'add_to_cart') AS cart_adds,
    GREATEST(DATE_DIFF(DATE(TIMESTAMP_SUB(@interval_end, INTERVAL 1 MICROSECOND)), DATE(MIN(ts)), DAY), 0) AS tenure_days
  FROM events
  GROUP BY customer_id
),
demographics AS (
  SELECT
    customer_id,
    ARRAY_AGG(SAFE_CAST(JSON_VALUE(properties, '$.age') AS INT64) IGNORE NULLS ORDER BY ts DESC, event_id DESC LIMIT 1)[SAFE_OFFSET(0)] AS age,
    ARRAY_AGG(JSON_VALUE(properties, '$.gender') IGNORE NULLS ORDER BY ts DESC, event_id DESC LIMIT 1)[SAFE_OFFSET(0)] AS gender,
    ARRAY_AGG(JSON_VALUE(properties, '$.country') IGNORE NULLS ORDER BY ts DESC, event_id DESC LIMIT 1)[SAFE_OFFSET(0)] AS country,
    ARRAY_AGG(JSON_VALUE(properties, '$.income_band') IGNORE NULLS ORDER BY ts DESC, event_id DESC LIMIT 1)[SAFE_OFFSET(0)] AS income_band
  FROM events
  WHERE type = 'profile_update'
  GROUP BY customer_id
),
web AS (
  SELECT
    customer_id,
    COUNT(*) AS web_sessions,
    SUM(page_views) AS page_views,
    SUM(total_page_duration_ms) AS page_duration_ms
  FROM {{ ref('fct_sessions') }}
  WHERE customer_id IN (SELECT customer_id FROM touched)
  GROUP BY customer_id
),
buyers AS (
  SELECT
    customer_id,
    COUNT(*) AS frequency,
    SUM(amount) AS monetary,
    GREATEST(DATE_DIFF(DATE(TIMESTAMP_SUB(@interval_end, INTERVAL 1 MICROSECOND)), DATE(MAX(ts)), DAY), 0) AS recency_days
  FROM {{ ref('fct_orders') }}
  GROUP BY customer_id
),
rfm AS (
  SELECT
    customer_id,
    frequency,
    monetary,
    recency_days,
    DIV(5 * COUNT(*) OVER (ORDER BY recency_days DESC) + COUNT(*) OVER () - 1, COUNT(*) OVER ()) AS r_score,
    DIV(5 * COUNT(*) OVER (ORDER BY frequency) + COUNT(*) OVER () - 1, COUNT(*) OVER ()) AS f_score,
    DIV(5 * COUNT(*) OVER (ORDER BY monetary) + COUNT(*) OVER () - 1, COUNT(*) OVER ()) AS m_score
  FROM buyers
),
campaigns AS (
  SELECT campaign_id, MIN(first_interaction_at) AS launched_at
  FROM {{ ref('fct_email_interactions') }}
  GROUP BY campaign_id
),
own_campaigns AS (
  SELECT customer_id, campaign_id, clicks > 0 AS clicked
  FROM {{ ref('fct_email_interactions') }}
  WHERE customer_id IN (SELECT customer_id FROM touched)
),
received AS (
  SELECT customer_id, COUNT(DISTINCT campaign_id) AS campaigns_received
  FROM (
    SELECT customer_id, campaign_id FROM own_campaigns
    UNION ALL
    SELECT a.customer_id, c.campaign_id
    FROM activity AS a
    CROSS JOIN campaigns AS c
    WHERE c.launched_at >= a.first_seen_at
  )
  GROUP BY customer_id
),
email AS (
  SELECT customer_id, COUNT(*) AS campaigns_opened, COUNTIF(clicked) AS campaigns_clicked
  FROM own_campaigns
  GROUP BY customer_id
),
app AS (
  SELECT customer_id, COUNT(*) AS app_sessions
  FROM {{ ref('fct_app_sessions') }}
  WHERE customer_id IN (SELECT customer_id FROM touched)
  GROUP BY customer_id
)
SELECT
  a.customer_id,
  d.age,
  d.gender,
  d.country,
  d.income_band,
  a.first_seen_at,
  a.tenure_days,
  a.days_active,
  a.days_active / (a.tenure_days + 1) AS engagement_frequency,
  COALESCE(w.web_sessions, 0) AS web_sessions,
  COALESCE(w.web_sessions, 0) * 7 / GREATEST(a.tenure_days + 1, 7) AS sessions_per_week,
  SAFE_DIVIDE(w.page_views, w.web_sessions) AS pages_per_session,
  SAFE_DIVIDE(w.page_duration_ms, w.page_views) AS avg_time_on_page_ms,
  a.cart_adds,
  r.recency_days,
  COALESCE(r.frequency, 0) AS frequency,
  CAST(COALESCE(r.monetary, 0) AS FLOAT64) AS monetary,
  COALESCE(r.r_score, 1) AS r_score,
  COALESCE(r.f_score, 1) AS f_score,
  COALESCE(r.m_score, 1) AS m_score,
  COALESCE(e.campaigns_opened, 0) AS campaigns_opened,
  COALESCE(e.campaigns_clicked, 0) AS campaigns_clicked,
  COALESCE(rc.campaigns_received, 0) AS campaigns_received,
  SAFE_DIVIDE(COALESCE(e.campaigns_opened, 0), rc.campaigns_received) AS email_open_rate,
  SAFE_DIVIDE(e.campaigns_clicked, e.campaigns_opened) AS email_ctr,
  COALESCE(p.app_sessions, 0) AS app_sessions,
  @interval_end AS features_as_of,
  @interval_end AS updated_at
FROM activity AS a
LEFT JOIN demographics AS d USING (customer_id)
LEFT JOIN web AS w USING (customer_id)
LEFT JOIN rfm AS r USING (customer_id)
LEFT JOIN email AS e USING (customer_id)
LEFT JOIN received AS rc USING (customer_id)
LEFT JOIN app AS p USING (customer_id)

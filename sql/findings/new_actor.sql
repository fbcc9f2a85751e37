-- kind: new_actor
-- report: new_client_ips
-- rule: an actor working successfully in the period that the tenant never saw in the look-back window (medium; low for a tenant that saw {routine_new_per_30_days} or more new actors per 30 days of its look-back)
-- churn: actors first seen in the look-back after its first {min_history_days} days, and how many days that part spans.
WITH known AS (SELECT DISTINCT tenant_id, actor_id FROM events_baseline),
span AS (SELECT tenant_id, min(arrow_cast(day, 'Int32')) AS d0, max(arrow_cast(day, 'Int32')) AS d1 FROM events_baseline GROUP BY tenant_id),
firsts AS (SELECT tenant_id, actor_id, min(arrow_cast(day, 'Int32')) AS first_day FROM events_baseline WHERE actor_id IS NOT NULL GROUP BY tenant_id, actor_id),
churn AS (
    SELECT s.tenant_id, count(f.actor_id) AS baseline_new, greatest(s.d1 - s.d0 - {min_history_days} + 1, 0) AS churn_days
    FROM span s LEFT JOIN firsts f ON f.tenant_id = s.tenant_id AND f.first_day >= s.d0 + {min_history_days}
    GROUP BY s.tenant_id, s.d0, s.d1
)
SELECT e.tenant_id, min(e.time) AS time, e.actor_id,
       array_to_string(array_sort(array_agg(DISTINCT e.client_ip)), ', ') AS client_ip,
       CAST(NULL AS VARCHAR) AS ouid, count(*) AS events,
       array_to_string(array_sort(array_agg(DISTINCT e.role)), ', ') AS roles,
       coalesce(max(th.history_days), 0) AS history_days,
       coalesce(max(ch.baseline_new), 0) AS baseline_new, coalesce(max(ch.churn_days), 0) AS churn_days
FROM events e
LEFT JOIN known k ON k.tenant_id = e.tenant_id AND k.actor_id = e.actor_id
LEFT JOIN tenant_history th ON th.tenant_id = e.tenant_id
LEFT JOIN churn ch ON ch.tenant_id = e.tenant_id
WHERE e.outcome = 'success' AND e.actor_id IS NOT NULL AND k.actor_id IS NULL
GROUP BY e.tenant_id, e.actor_id
ORDER BY e.tenant_id, time

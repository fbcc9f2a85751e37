-- kind: dormant_key
-- report: key_first_use
-- rule: a key first used in the period more than {dormant_days} days after its creation (medium; low for a tenant whose look-back window saw {routine_new_per_30_days} or more such first uses per 30 days)
-- key_events_before_period: the successful events with a key before the period (all of the lake's history).
-- baseline_new: keys first used in the look-back window more than {dormant_days} days after their creation.
WITH uses AS (
    SELECT e.tenant_id, e.ouid, e.time, e.actor_id, e.client_ip, e.action, e.trace_id
    FROM events e JOIN action_catalog c ON c.vendor = e.vendor AND c.action = e.action
    WHERE c.category = 'key_use' AND e.outcome = 'success' AND e.ouid IS NOT NULL
),
firsts AS (SELECT tenant_id, ouid, min(time) AS first_use, count(*) AS uses FROM uses GROUP BY tenant_id, ouid),
used_before AS (
    SELECT DISTINCT b.tenant_id, b.ouid
    FROM key_events_before_period b JOIN action_catalog c ON c.vendor = b.vendor AND c.action = b.action
    WHERE c.category = 'key_use'
),
created AS (
    SELECT a.tenant_id, a.ouid, min(a.time) AS created_at
    FROM (SELECT tenant_id, ouid, time, vendor, action FROM key_events_before_period
          UNION ALL SELECT tenant_id, ouid, time, vendor, action FROM events
                    WHERE outcome = 'success' AND ouid IS NOT NULL) a
    JOIN action_catalog c ON c.vendor = a.vendor AND c.action = a.action
    WHERE c.category = 'key_create'
    GROUP BY a.tenant_id, a.ouid
),
hist AS (
    SELECT b.tenant_id, b.ouid,
           min(CASE WHEN c.category = 'key_create' THEN b.time END) AS created_at,
           min(CASE WHEN c.category = 'key_use' THEN b.time END) AS first_use
    FROM key_events_before_period b JOIN action_catalog c ON c.vendor = b.vendor AND c.action = b.action
    WHERE c.category IN ('key_create', 'key_use')
    GROUP BY b.tenant_id, b.ouid
),
late AS (
    SELECT tenant_id, count(*) AS baseline_new FROM hist
    WHERE arrow_cast(first_use, 'Int64') >= {period_start_us} - {baseline_days} * 86400000000
      AND first_use > created_at + INTERVAL '{dormant_days} days'
    GROUP BY tenant_id
)
SELECT f.tenant_id, f.first_use AS time, min(u.actor_id) AS actor_id, min(u.client_ip) AS client_ip, f.ouid,
       cr.created_at, f.uses, min(u.action) AS action,
       coalesce(max(l.baseline_new), 0) AS baseline_new, coalesce(max(th.history_days), 0) AS churn_days
FROM firsts f
JOIN created cr ON cr.tenant_id = f.tenant_id AND cr.ouid = f.ouid
LEFT JOIN used_before ub ON ub.tenant_id = f.tenant_id AND ub.ouid = f.ouid
JOIN uses u ON u.tenant_id = f.tenant_id AND u.ouid = f.ouid AND u.time = f.first_use
LEFT JOIN late l ON l.tenant_id = f.tenant_id
LEFT JOIN tenant_history th ON th.tenant_id = f.tenant_id
WHERE ub.ouid IS NULL AND f.first_use > cr.created_at + INTERVAL '{dormant_days} days'
GROUP BY f.tenant_id, f.first_use, f.ouid, cr.created_at, f.uses
ORDER BY f.tenant_id, time

-- kind: dormant_key
-- report: key_first_use
-- rule: a key first used in the period more than {dormant_days} days after its creation (medium)
-- key_events_before_period: the successful events with a key before the period (all of the lake's history).
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
)
SELECT f.tenant_id, f.first_use AS time, min(u.actor_id) AS actor_id, min(u.client_ip) AS client_ip, f.ouid,
       cr.created_at, f.uses, min(u.action) AS action
FROM firsts f
JOIN created cr ON cr.tenant_id = f.tenant_id AND cr.ouid = f.ouid
LEFT JOIN used_before ub ON ub.tenant_id = f.tenant_id AND ub.ouid = f.ouid
JOIN uses u ON u.tenant_id = f.tenant_id AND u.ouid = f.ouid AND u.time = f.first_use
WHERE ub.ouid IS NULL AND f.first_use > cr.created_at + INTERVAL '{dormant_days} days'
GROUP BY f.tenant_id, f.first_use, f.ouid, cr.created_at, f.uses
ORDER BY f.tenant_id, time

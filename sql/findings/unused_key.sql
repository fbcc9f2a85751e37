-- kind: unused_key
-- report: key_lifecycle
-- rule: a key neither used nor destroyed for {unused_key_days} days, on the day that happens within the period: a candidate for retirement (low)
WITH cat AS (SELECT vendor, action, category FROM action_catalog),
k AS (
    SELECT x.tenant_id, x.ouid, x.time, x.actor_id, x.client_ip, c.category
    FROM (SELECT tenant_id, ouid, time, vendor, action, actor_id, client_ip FROM key_events_before_period
          UNION ALL
          SELECT tenant_id, ouid, time, vendor, action, actor_id, client_ip FROM events
          WHERE outcome = 'success' AND ouid IS NOT NULL) x
    LEFT JOIN cat c ON c.vendor = x.vendor AND c.action = x.action
),
quiet AS (
    SELECT tenant_id, ouid,
           max(time) FILTER (WHERE category IN ('key_create', 'key_use')) AS last_active,
           bool_or(category = 'key_destroy') AS destroyed
    FROM k
    GROUP BY tenant_id, ouid
),
due AS (
    SELECT tenant_id, ouid, last_active,
           arrow_cast(last_active, 'Int64') + {unused_key_days} * 86400000000 AS due_us
    FROM quiet
    WHERE last_active IS NOT NULL AND NOT coalesce(destroyed, false)
)
SELECT d.tenant_id, arrow_cast(d.due_us, 'Timestamp(Microsecond, Some("UTC"))') AS time, d.ouid, d.last_active,
       min(k.actor_id) AS actor_id, min(k.client_ip) AS client_ip
FROM due d
JOIN k ON k.tenant_id = d.tenant_id AND k.ouid = d.ouid AND k.time = d.last_active
      AND k.category IN ('key_create', 'key_use')
WHERE d.due_us BETWEEN {period_start_us} AND {period_end_us}
GROUP BY d.tenant_id, d.due_us, d.ouid, d.last_active
ORDER BY d.tenant_id, time

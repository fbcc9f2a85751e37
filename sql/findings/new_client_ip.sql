-- kind: new_client_ip
-- actor_ips_before_period: each actor's client IPs of successful events in all the lake's history before the period.
-- report: new_client_ips
-- rule: a known actor working successfully from a client IP it never used in the look-back window (medium; low when the IP is one the tenant's other actors use, or one the actor used before the look-back window; high when its first event falls in hours the tenant never works)
WITH base AS (SELECT tenant_id, actor_id, client_ip FROM events_baseline WHERE outcome = 'success'),
     actors AS (SELECT DISTINCT tenant_id, actor_id FROM base),
     pairs AS (SELECT DISTINCT tenant_id, actor_id, client_ip FROM base),
     ips AS (SELECT DISTINCT tenant_id, client_ip FROM base),
     new_pairs AS (
         SELECT p.tenant_id, p.actor_id, p.client_ip, p.time, p.off_hours, p.local_time
         FROM period_clock p
         JOIN actors a ON a.tenant_id = p.tenant_id AND a.actor_id = p.actor_id
         LEFT JOIN pairs k ON k.tenant_id = p.tenant_id AND k.actor_id = p.actor_id AND k.client_ip = p.client_ip
         WHERE p.outcome = 'success' AND p.client_ip IS NOT NULL AND k.client_ip IS NULL
     ),
     firsts AS (
         SELECT tenant_id, actor_id, client_ip, min(time) AS time, count(*) AS events,
                bool_or(coalesce(off_hours, false)) AS any_off_hours
         FROM new_pairs GROUP BY tenant_id, actor_id, client_ip
     )
SELECT f.tenant_id, f.time, f.actor_id, f.client_ip, CAST(NULL AS VARCHAR) AS ouid, f.events,
       f.any_off_hours, n.off_hours AS first_off_hours, n.local_time,
       i.client_ip IS NOT NULL AS ip_known_to_tenant, e.client_ip IS NOT NULL AS seen_earlier
FROM firsts f
JOIN new_pairs n ON n.tenant_id = f.tenant_id AND n.actor_id = f.actor_id AND n.client_ip = f.client_ip AND n.time = f.time
LEFT JOIN ips i ON i.tenant_id = f.tenant_id AND i.client_ip = f.client_ip
LEFT JOIN actor_ips_before_period e ON e.tenant_id = f.tenant_id AND e.actor_id = f.actor_id AND e.client_ip = f.client_ip
ORDER BY f.tenant_id, f.time

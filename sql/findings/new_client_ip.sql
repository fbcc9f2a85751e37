-- kind: new_client_ip
-- actor_ips_before_period: each actor's client IPs of successful events in all the lake's history before the period.
-- report: new_client_ips
-- rule: a known actor working successfully from a client IP it never used in the look-back window (medium; low when the IP is one the tenant's other actors use, one the actor used before the look-back window, or the tenant saw {routine_new_per_30_days} or more new addresses of its actors per 30 days of its look-back; high when its first event falls in hours the tenant never works)
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
     span AS (SELECT tenant_id, min(arrow_cast(day, 'Int32')) AS d0, max(arrow_cast(day, 'Int32')) AS d1 FROM events_baseline GROUP BY tenant_id),
     pair_firsts AS (
         SELECT tenant_id, actor_id, client_ip, min(arrow_cast(day, 'Int32')) AS first_day
         FROM events_baseline WHERE outcome = 'success' AND client_ip IS NOT NULL AND actor_id IS NOT NULL
         GROUP BY tenant_id, actor_id, client_ip
     ),
     actor_firsts AS (SELECT tenant_id, actor_id, min(first_day) AS first_day FROM pair_firsts GROUP BY tenant_id, actor_id),
     -- New addresses of actors the look-back already knew, after its first {min_history_days} days.
     churn AS (
         SELECT s.tenant_id, count(p.client_ip) AS baseline_new, greatest(s.d1 - s.d0 - {min_history_days} + 1, 0) AS churn_days
         FROM span s
         LEFT JOIN (SELECT p.tenant_id, p.client_ip, p.first_day FROM pair_firsts p
                    JOIN actor_firsts a ON a.tenant_id = p.tenant_id AND a.actor_id = p.actor_id
                    WHERE p.first_day > a.first_day) p
           ON p.tenant_id = s.tenant_id AND p.first_day >= s.d0 + {min_history_days}
         GROUP BY s.tenant_id, s.d0, s.d1
     ),
     firsts AS (
         SELECT tenant_id, actor_id, client_ip, min(time) AS time, count(*) AS events,
                bool_or(coalesce(off_hours, false)) AS any_off_hours
         FROM new_pairs GROUP BY tenant_id, actor_id, client_ip
     )
SELECT f.tenant_id, f.time, f.actor_id, f.client_ip, CAST(NULL AS VARCHAR) AS ouid, f.events,
       f.any_off_hours, n.off_hours AS first_off_hours, n.local_time,
       i.client_ip IS NOT NULL AS ip_known_to_tenant, e.client_ip IS NOT NULL AS seen_earlier,
       coalesce(ch.baseline_new, 0) AS baseline_new, coalesce(ch.churn_days, 0) AS churn_days
FROM firsts f
LEFT JOIN churn ch ON ch.tenant_id = f.tenant_id
JOIN new_pairs n ON n.tenant_id = f.tenant_id AND n.actor_id = f.actor_id AND n.client_ip = f.client_ip AND n.time = f.time
LEFT JOIN ips i ON i.tenant_id = f.tenant_id AND i.client_ip = f.client_ip
LEFT JOIN actor_ips_before_period e ON e.tenant_id = f.tenant_id AND e.actor_id = f.actor_id AND e.client_ip = f.client_ip
ORDER BY f.tenant_id, f.time

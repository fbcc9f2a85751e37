-- kind: key_users_widen
-- report: key_first_use
-- rule: a key used in the period by {key_widen_min_new} or more actors that never used it in the look-back window, at least as many as did use it then (its users at least double) (medium)
WITH cat AS (SELECT vendor, action FROM action_catalog WHERE category = 'key_use'),
before AS (
    SELECT DISTINCT b.tenant_id, b.ouid, b.actor_id
    FROM events_baseline b JOIN cat c ON c.vendor = b.vendor AND c.action = b.action
    WHERE b.outcome = 'success' AND b.ouid IS NOT NULL AND b.actor_id IS NOT NULL
),
users AS (
    SELECT tenant_id, ouid, count(*) AS baseline_users,
           array_to_string(array_sort(array_agg(actor_id)), ', ') AS baseline_actors
    FROM before GROUP BY tenant_id, ouid
),
fresh AS (
    SELECT e.tenant_id, e.ouid, e.actor_id, min(e.time) AS first_use
    FROM events e
    JOIN cat c ON c.vendor = e.vendor AND c.action = e.action
    LEFT JOIN before b ON b.tenant_id = e.tenant_id AND b.ouid = e.ouid AND b.actor_id = e.actor_id
    WHERE e.outcome = 'success' AND e.ouid IS NOT NULL AND e.actor_id IS NOT NULL AND b.actor_id IS NULL
    GROUP BY e.tenant_id, e.ouid, e.actor_id
)
SELECT f.tenant_id, f.ouid, min(f.first_use) AS time, max(f.first_use) AS last_new,
       count(*) AS new_users, array_to_string(array_sort(array_agg(f.actor_id)), ', ') AS new_actors,
       u.baseline_users, u.baseline_actors
FROM fresh f
JOIN users u ON u.tenant_id = f.tenant_id AND u.ouid = f.ouid
GROUP BY f.tenant_id, f.ouid, u.baseline_users, u.baseline_actors
HAVING count(*) >= {key_widen_min_new} AND count(*) >= u.baseline_users
ORDER BY f.tenant_id, time
